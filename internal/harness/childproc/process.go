package childproc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Command is what Start starts.
type Command struct {
	// Name names the process in log lines and errors.
	Name string
	// Path is the binary; Args its arguments.
	Path string
	Args []string
	// Env is the child's whole environment; nil inherits the parent's.
	Env []string
	// Out receives its standard output and error. A writer with a Flush
	// method (the runner's prefixed output) is flushed once the process
	// has exited, so that a last line without a newline is not lost.
	Out io.Writer
	// Log gets the start, stop and kill lines; nil logs nothing.
	Log *slog.Logger
}

// Process is one child: started in its own process group so that a Ctrl-C
// on the terminal reaches only its parent, which then stops the children
// in order; with the parent-death signal so that a parent killed with
// SIGKILL does not leave it running.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  *slog.Logger
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// Start starts c and waits for its exit in the background.
func Start(c Command) (*Process, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	cmd.Stdout, cmd.Stderr = c.Out, c.Out
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that inherited the output pipe must not keep Wait
	// from returning once the child itself has exited.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", c.Name, c.Path, err)
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Process{name: c.Name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if f, ok := c.Out.(interface{ Flush() }); ok {
			f.Flush()
		}
		close(p.done)
	}()
	log.Info("started", "process", c.Name, "pid", cmd.Process.Pid)
	return p, nil
}

// Name is Command.Name.
func (p *Process) Name() string { return p.name }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended, as exec.Cmd.Wait reports it; valid once
// Done is closed.
func (p *Process) Err() error { return p.err }

// ExitCode is the exit status, -1 if a signal ended the process; valid
// once Done is closed.
func (p *Process) ExitCode() int { return p.cmd.ProcessState.ExitCode() }

// Stop asks the process to stop with SIGTERM and waits up to grace, then
// kills its process group. Whatever it started and left behind (found in
// /proc before the signal) is killed and reported: a clean child leaves
// nothing. The error is nil when the process exited with status 0 or of
// the SIGTERM and left nothing behind.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.reap(nil)
	}
	tree, err := Descendants(p.Pid())
	if err != nil {
		p.log.Warn("cannot list child processes", "process", p.name, "error", err)
	}
	p.log.Info("stopping", "process", p.name)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s: %w", p.name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.log.Warn("did not stop in time, killing it", "process", p.name, "grace", grace.String())
		// The whole group: the child and whatever it started without a
		// group of its own.
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	return p.reap(tree)
}

// reap kills what p left behind and reports a failed exit. A process that
// was stopped with SIGTERM and died of it has not failed.
func (p *Process) reap(tree []Proc) error {
	var leftovers []string
	for _, d := range tree {
		if d.Alive() {
			_ = syscall.Kill(d.PID, syscall.SIGKILL)
			leftovers = append(leftovers, d.String())
		}
	}
	var errs []error
	if len(leftovers) > 0 {
		errs = append(errs, fmt.Errorf("%s left processes behind, killed them: %v", p.name, leftovers))
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return errors.Join(errs...)
		}
	}
	if p.err != nil {
		errs = append(errs, fmt.Errorf("%s exited: %w", p.name, p.err))
	}
	return errors.Join(errs...)
}

// Kill ends the process group at once with SIGKILL, as a crash or an OOM
// kill would, and waits for the exit. Killing a process that has already
// exited is not an error.
func (p *Process) Kill() error {
	if p.Exited() {
		return nil
	}
	p.log.Info("killing", "process", p.name)
	if err := syscall.Kill(-p.Pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	<-p.done
	return nil
}
