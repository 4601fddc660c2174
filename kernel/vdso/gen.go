package vdso

// Rebuild vdso.so from vdso.c and vdso.lds (needs gcc and binutils).
//go:generate gcc -O2 -fPIC -nostdlib -shared -fno-asynchronous-unwind-tables -fno-stack-protector -fcf-protection=none -Wl,-T,vdso.lds -Wl,-soname=linux-vdso.so.1 -Wl,--hash-style=both -Wl,--build-id=none -o vdso.so vdso.c
