package abi

// arm64 uses the asm-generic table; in x/sys v0.50.0 every arm64 syscall
// also exists on amd64, so there are no arm64-only constants to add to
// xsysHostOnly. (SYS_ARCH_SPECIFIC_SYSCALL is a range marker, not a
// syscall, and is deliberately absent from the table.)
