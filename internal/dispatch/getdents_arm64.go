package dispatch

// legacyGetdentsNr: arm64 has no legacy getdents; the handler is never
// registered for it (the syscall table has no such name).
const legacyGetdentsNr = ^uintptr(0)
