package vdso

// Rebuild vdso.so from source/ (needs gcc and binutils; the README's
// "vDSO" section says more).
//go:generate gcc -O2 -fPIC -nostdlib -shared -fno-asynchronous-unwind-tables -fno-stack-protector -fcf-protection=none -Wl,-T,source/vdso.lds -Wl,-soname=linux-vdso.so.1 -Wl,--hash-style=both -Wl,--build-id=none -o vdso.so source/vdso.c
