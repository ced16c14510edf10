package cli

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes. They are part of the CLI's contract with scripts and are
// listed in the root command's help.
const (
	ExitOK          = 0
	ExitFailed      = 1 // the workflow failed, was cancelled or terminated; or another runtime error
	ExitUsage       = 2 // bad flags or arguments, invalid input
	ExitNotFound    = 3 // no such workflow or schedule
	ExitUnreachable = 4 // Temporal (or the supervisor) cannot be reached
	ExitTimeout     = 5 // --timeout elapsed while waiting; the workflow is still running
)

const exitCodesHelp = `Exit codes:
  0  success
  1  the workflow failed, was cancelled or terminated (or another runtime error)
  2  usage: bad flags or arguments, invalid input
  3  not found: no workflow for that Machine, no schedule
  4  Temporal cannot be reached
  5  --timeout elapsed while waiting; the workflow is still running`

// exitError carries the exit code an error ends the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func usageErrorf(format string, args ...any) error {
	return withCode(ExitUsage, fmt.Errorf(format, args...))
}

func notFoundErrorf(format string, args ...any) error {
	return withCode(ExitNotFound, fmt.Errorf(format, args...))
}

// exitCode maps an error to its exit code: an explicit code wins, then
// what the Temporal API status says.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return ExitNotFound
	}
	if unreachable(err) {
		return ExitUnreachable
	}
	return ExitFailed
}

// unreachable reports whether err means that no Temporal frontend answered.
func unreachable(err error) bool {
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var deadline *serviceerror.DeadlineExceeded
	if errors.As(err, &deadline) {
		return true
	}
	s, ok := status.FromError(err)
	return ok && (s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded)
}
