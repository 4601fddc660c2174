# A program with no libc: writes a line, then exits with status 7.
	.globl _start
	.text
_start:
	mov $1, %eax            # write
	mov $1, %edi
	lea msg(%rip), %rsi
	mov $len, %edx
	syscall
	mov $231, %eax          # exit_group
	mov $7, %edi
	syscall
	hlt
	.section .rodata
msg:	.ascii "hello from a bare guest\n"
	len = . - msg
