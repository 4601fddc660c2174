package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kvmbox/kvmbox"
	"golang.org/x/sys/unix"
)

// joinWaitCommand is how create starts the process that stands for a
// container joining a pod's sandbox: this binary with the global flags,
// then joinWaitCommand ID, its standard streams the container's and
// descriptor 3 a pipe on which it reports that the container is in the
// pod's sandbox ("ok") or why not. It exits with the container's status,
// as the containerd shim expects of the pid in --pid-file.
const joinWaitCommand = "__join-wait"

// podOf returns the pod sandbox that a container with these annotations
// joins, with the host pid of its pause container, or "" when it joins
// none: containerd's CRI plugin names a pod container's pause container
// in its annotations, and a pause container that this --root holds is a
// pod sandbox.
func (rt *runtime) podOf(annotations map[string]string) (string, int, error) {
	if annotations[criContainerType] != criContainer {
		return "", 0, nil
	}
	pod := annotations[criSandboxID]
	if checkID(pod) != nil {
		return "", 0, refuse("annotations."+criSandboxID, "%q is not a container ID", pod)
	}
	st, err := rt.loadState(pod)
	if err != nil {
		return "", 0, refuse("annotations."+criSandboxID, "no pod sandbox %s under --root %s: %v", pod, rt.root, err)
	}
	if st.Pod != "" || st.Annotations[criContainerType] != criSandbox {
		return "", 0, refuse("annotations."+criSandboxID, "%s is not a pause container (annotation %s=%s)", pod, criContainerType, criSandbox)
	}
	if rt.status(pod) == statusStopped {
		return "", 0, refuse("annotations."+criSandboxID, "the pod sandbox %s has stopped", pod)
	}
	return pod, st.MonitorPid, nil
}

// join adds the container a waiter names to the sandbox, with the three
// descriptors sent with the request as its standard streams. The
// connection stays open while the container exists: signal requests on
// it reach the container's process, its end is the last reply, and a
// connection closed early kills the container.
func (m *monitor) join(c *conn, req request, files []*os.File) {
	defer c.Close()
	defer closeAll(files)
	if len(files) != 3 {
		c.send(reply{Error: "joining a pod needs three descriptors"})
		return
	}
	stopped := make(chan int, 1)
	ct, err := m.addMember(req.Container, files, peerPid(c), func(code int) { stopped <- code })
	if err != nil {
		c.send(reply{Error: err.Error()})
		return
	}
	if err := c.send(reply{}); err != nil {
		m.kill(ct, unix.SIGKILL, true)
	}
	go func() {
		for {
			var r request
			if _, err := c.receive(&r); err != nil {
				m.kill(ct, unix.SIGKILL, true)
				return
			}
			if r.Op == opSignal {
				m.kill(ct, syscall.Signal(r.Signal), false)
			}
		}
	}()
	c.send(reply{Exited: true, ExitCode: <-stopped})
}

// addMember plans the container id from its bundle and mounts its root
// file system and its mounts under podContainersDir/id, with the pod's
// /proc and /dev and a /tmp of its own, as a sandbox of its own would
// have them.
func (m *monitor) addMember(id string, stdio []*os.File, pid int, stopped func(int)) (*container, error) {
	if checkID(id) != nil || id == m.id {
		return nil, fmt.Errorf("invalid container ID %q", id)
	}
	st, err := m.rt.loadState(id)
	if err != nil {
		return nil, err
	}
	if st.Pod != m.id {
		return nil, fmt.Errorf("container %s does not join the pod sandbox %s", id, m.id)
	}
	spec, _, err := loadBundleSpec(st.Bundle)
	if err != nil {
		return nil, err
	}
	p, err := planContainer(spec, st.Bundle, filepath.Join(m.rt.stateDir(id), emptyDir), os.Getpid())
	if err != nil {
		return nil, err
	}
	root := path.Join(podContainersDir, id)
	m.mu.Lock()
	if _, dup := m.containers[id]; dup {
		m.mu.Unlock()
		return nil, fmt.Errorf("container with id exists: %s", id)
	}
	if m.sb.Paused() {
		m.mu.Unlock()
		return nil, fmt.Errorf("the pod sandbox %s is paused", m.id)
	}
	ct := &container{id: id, rootfs: st.Rootfs, root: root, plan: p, stdio: stdio, status: statusCreated,
		pid: pid, execs: map[*conn]int{}, stopped: stopped}
	m.containers[id] = ct
	m.mu.Unlock()
	if err := mountMember(m.sb, root, st.Rootfs, &p.sandbox); err != nil {
		m.mu.Lock()
		delete(m.containers, id)
		m.mu.Unlock()
		m.sb.Unmount(root)
		return nil, err
	}
	return ct, nil
}

// mountMember mounts a container's root file system at root in the pod's
// sandbox, then under it what a sandbox of its own would have: /proc,
// /dev (with /dev/shm) and a /tmp, then its mounts and tmpfs, and last
// makes the root read-only if it is to be.
func mountMember(sb *kvmbox.Sandbox, root, rootfs string, cfg *kvmbox.Config) error {
	if err := sb.Mount(kvmbox.Mount{Source: rootfs, Target: root, Overlay: true}); err != nil {
		return err
	}
	// The sandbox resolves paths from its own root: a destination's links
	// are resolved in the container's root file system first.
	under := func(dest string) (string, error) {
		resolved, err := resolveInRootfs(rootfs, dest)
		return root + resolved, err
	}
	for _, dir := range []string{"/proc", "/dev"} {
		target, err := under(dir)
		if err == nil {
			err = sb.Bind(dir, target)
		}
		if err != nil {
			return err
		}
	}
	target, err := under("/tmp")
	if err == nil {
		err = sb.MountTmpfs(kvmbox.Tmpfs{Target: target})
	}
	if err != nil {
		return err
	}
	for _, mnt := range cfg.Mounts {
		if mnt.Target, err = under(mnt.Target); err != nil {
			return err
		}
		if err := sb.Mount(mnt); err != nil {
			return err
		}
	}
	for _, t := range cfg.Tmpfs {
		if t.Target, err = under(t.Target); err != nil {
			return err
		}
		if err := sb.MountTmpfs(t); err != nil {
			return err
		}
	}
	if cfg.ReadOnlyRoot {
		return sb.Remount(root, true)
	}
	return nil
}

// maxLinks bounds the symbolic links one path resolution follows, as
// Linux's 40.
const maxLinks = 40

// resolveInRootfs resolves the symbolic links in the absolute path dest
// inside the host directory rootfs taken as /, as runc resolves a mount's
// destination: links never lead outside rootfs, and what does not exist
// yet is kept as it is (its mount point is made there).
func resolveInRootfs(rootfs, dest string) (string, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return "", err
	}
	defer root.Close()
	rest := strings.Split(dest, "/")
	resolved, links := "/", 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, name)
		st, err := root.Lstat(next[1:])
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: %w", dest, unix.ELOOP)
		}
		target, err := root.Readlink(next[1:])
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// joinWait is the process that stands for a container in a pod: it hands
// its standard streams to the pod's monitor, forwards the signals it gets
// to the container's process, and exits with the container's status.
func (rt *runtime) joinWait(args []string, _ io.Writer) error {
	ready := os.NewFile(3, "ready")
	if len(args) != 1 {
		return errUsage
	}
	err := rt.runMember(args[0], ready)
	var exit *exitError
	if err != nil && !errors.As(err, &exit) {
		io.WriteString(ready, err.Error())
		ready.Close()
	}
	return err
}

func (rt *runtime) runMember(id string, ready *os.File) error {
	c, member, err := rt.dial(id)
	if err != nil {
		return fmt.Errorf("the pod sandbox's monitor: %w", err)
	}
	defer c.Close()
	if err := c.send(request{Op: opJoin, Container: member}, os.Stdin, os.Stdout, os.Stderr); err != nil {
		return err
	}
	var r reply
	if _, err := c.receive(&r); err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	io.WriteString(ready, "ok")
	ready.Close()
	if !awaitExit(c, &r) {
		// The pod's sandbox ended, and the container's processes with it.
		return &exitError{code: 128 + int(syscall.SIGKILL)}
	}
	return &exitError{code: r.ExitCode}
}
