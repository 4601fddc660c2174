# terminals.py drives pseudo-terminals from Python: pty.fork with a child
# reading a line from its terminal, pty.spawn, os.openpty with termios and
# tty.setraw, the window size, select on the master and EIO once the
# slave has closed. Output is the same on any machine.
import errno
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import tty


def read_until(fd, marker):
    out = b""
    while marker not in out:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def read_all(fd):
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError as e:
            return out, errno.errorcode[e.errno]
        if not chunk:
            return out, "EOF"
        out += chunk


pid, fd = pty.fork()
if pid == 0:
    print("child: tty", os.isatty(0), os.isatty(1), os.ttyname(0).startswith("/dev/pts/"), flush=True)
    print("child: foreground", os.tcgetpgrp(0) == os.getpgrp(), "leader", os.getsid(0) == os.getpid(), flush=True)
    line = sys.stdin.readline()
    print("child: got", repr(line), flush=True)
    os._exit(3)
print(read_until(fd, b"leader True\r\n"))
os.write(fd, b"hello world\n")
print(read_all(fd))
print("exit code", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
os.close(fd)

sys.stdout.flush()
status = pty.spawn(["/bin/echo", "spawned"])
print("spawn status", status)

master, slave = os.openpty()
print("openpty", os.isatty(master), os.isatty(slave), os.ttyname(slave).startswith("/dev/pts/"))
attrs = termios.tcgetattr(slave)
print("termios", [hex(f) for f in attrs[:4]], attrs[4:6], attrs[6][termios.VINTR], attrs[6][termios.VMIN])
tty.setraw(slave)
attrs = termios.tcgetattr(slave)
print("raw", [hex(f) for f in attrs[:4]], attrs[6][termios.VMIN], attrs[6][termios.VTIME])
os.write(master, b"\x03raw\r")
print(os.read(slave, 100))
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
print("winsize", struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8)))
print("select before", select.select([master], [], [], 0)[0] == [master])
os.write(slave, b"out\n")
print("select after", select.select([master], [], [], 5)[0] == [master])
os.close(slave)
print(read_all(master))
