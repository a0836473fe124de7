package dispatch

import "golang.org/x/sys/unix"

// legacyGetdentsNr is x86-64's getdents (arm64 has only getdents64).
const legacyGetdentsNr = unix.SYS_GETDENTS
