//go:build !linux

package childproc

import "syscall"

// Without a parent-death signal, a parent killed with SIGKILL leaves its
// children running; a parent that stops them itself still can.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
