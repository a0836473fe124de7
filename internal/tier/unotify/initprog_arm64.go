package unotify

import _ "embed"

//go:embed initprog/init_arm64.bin
var initProgramARM64 []byte

func init() { initProgram = initProgramARM64 }
