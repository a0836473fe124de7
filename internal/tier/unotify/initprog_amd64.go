package unotify

import _ "embed"

//go:embed initprog/init_amd64.bin
var initProgramAMD64 []byte

func init() { initProgram = initProgramAMD64 }
