package cli

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Cause is one link of a workflow's failure chain.
type Cause struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// failureChain walks a workflow's error from the outermost failure to the
// root cause. It reads type and message of each Temporal failure, never
// stack traces or details, so what it returns is what the workflow chose
// to say (activity messages name objects, never secrets).
func failureChain(err error) []Cause {
	var chain []Cause
	for err != nil {
		var c Cause
		switch e := err.(type) {
		case *temporal.WorkflowExecutionError:
			err = errors.Unwrap(e)
			continue
		case *temporal.ApplicationError:
			c = Cause{Type: e.Type(), Message: e.Message()}
		case *temporal.ActivityError:
			c = Cause{Type: "ActivityFailed", Message: "activity " + e.ActivityType().GetName() + " failed"}
		case *temporal.TimeoutError:
			c = Cause{Type: "Timeout", Message: fmt.Sprintf("timed out (%s)", e.TimeoutType())}
		case *temporal.CanceledError:
			c = Cause{Type: "Cancelled", Message: "the workflow was cancelled"}
		case *temporal.TerminatedError:
			c = Cause{Type: "Terminated", Message: "the workflow was terminated"}
		case *temporal.PanicError:
			c = Cause{Type: "Panic", Message: e.Error()}
		default:
			c = Cause{Type: "Error", Message: e.Error()}
			chain = append(chain, c)
			return chain // a foreign error's text already includes its causes
		}
		chain = append(chain, c)
		err = errors.Unwrap(err)
	}
	return chain
}

// describeFailure is the reason a workflow failed, as one line: the
// outermost failure, then each deeper cause whose message adds something.
func describeFailure(chain []Cause) string {
	if len(chain) == 0 {
		return "unknown failure"
	}
	parts := []string{chain[0].Type + ": " + chain[0].Message}
	said := chain[0].Message
	for _, c := range chain[1:] {
		if c.Type == "ActivityFailed" || strings.Contains(said, c.Message) {
			continue
		}
		parts = append(parts, c.Type+": "+c.Message)
		said += " " + c.Message
	}
	return strings.Join(parts, "; caused by ")
}
