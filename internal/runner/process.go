package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one child: started in its own process group so that a Ctrl-C
// on the terminal reaches only the runner, which then stops the children in
// order; with the parent-death signal so that a runner killed with SIGKILL
// does not leave them running.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// start starts bin with args and env (on top of the runner's environment),
// its output prefixed with name.
func (r *runner) start(name, bin string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(childEnv(), env...)
	w := r.out.prefixed(name)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that inherited the output pipe must not keep Wait
	// from returning once the child itself has exited.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		w.flush()
		close(p.done)
	}()
	r.procs = append(r.procs, p)
	r.log.Info("started", "process", name, "pid", cmd.Process.Pid)
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to stop with SIGTERM and waits up to grace, then
// kills it. Whatever it started and left behind (found in /proc before the
// signal) is killed and reported: a clean child leaves nothing.
func (r *runner) stop(p *process, grace time.Duration) error {
	if p.exited() {
		return r.reap(p, nil)
	}
	tree, err := Descendants(p.cmd.Process.Pid)
	if err != nil {
		r.log.Warn("cannot list child processes", "process", p.name, "error", err)
	}
	r.log.Info("stopping", "process", p.name)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s: %w", p.name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		r.log.Warn("did not stop in time, killing it", "process", p.name, "grace", grace.String())
		// The whole group: the child and whatever it started without a
		// group of its own.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return r.reap(p, tree)
}

// reap kills what p left behind and reports a failed exit. A process that
// the runner stopped with SIGTERM and that died of it has not failed.
func (r *runner) reap(p *process, tree []Proc) error {
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

// waitAny returns the first process to exit, or nil when ctx is done.
func waitAny(ctx context.Context, procs []*process) *process {
	exited := make(chan *process, len(procs))
	stop := make(chan struct{})
	defer close(stop)
	for _, p := range procs {
		go func() {
			select {
			case <-p.done:
				exited <- p
			case <-stop:
			}
		}()
	}
	select {
	case p := <-exited:
		return p
	case <-ctx.Done():
		return nil
	}
}
