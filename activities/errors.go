package activities

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// Every error an activity returns passes through classify or one of the
// constructors below, so the retryable/non-retryable decision lives here.

// classify turns an error from the ClientManager or an API server into a
// Temporal application error. what says what was being done ("get
// VirtualMachine ns/name on cluster-a") and becomes the message prefix; it
// never contains secret material, and neither do the causes we wrap (API
// server status messages and the clients package's errors name objects only).
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Before the deadline check: a request's own timeout is the cluster
	// not answering, and the clients package says so; the activity's
	// deadline, the other way to get here, leaves nobody to read the result.
	if errType, final, ok := classifyClientsError(err); ok {
		return newAppError(errType, final, err, "%s", what)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var netErr net.Error
	switch {
	case meta.IsNoMatchError(err):
		// A cluster without KubeVirt fails ValidateCluster, which asks
		// discovery itself, before anything is created. An API missing
		// later, from the client's discovery, is a cluster whose API
		// server restarted and has not published its CRDs in discovery
		// yet: failing the Machine for it would be wrong, and the retry
		// policy bounds the wait.
		return newAppError(contract.ErrTypeClusterUnreachable, false, err, "%s: API not served (yet)", what)
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		return newAppError(contract.ErrTypeUnauthorized, true, err, "%s", what)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return newAppError(contract.ErrTypeInvalidSpec, true, err, "%s: rejected by the API server", what)
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err),
		errors.As(err, &netErr):
		return newAppError(contract.ErrTypeClusterUnreachable, false, err, "%s", what)
	}
	// Conflicts, AlreadyExists races and anything unknown: retrying is the
	// safe default, the workflow's retry policy bounds it.
	return fmt.Errorf("%s: %w", what, err)
}

// clientsErrorTypes maps the clients package's sentinels to error types and
// whether they are final.
var clientsErrorTypes = []struct {
	sentinel error
	errType  string
	final    bool
}{
	{clients.ErrConfigNotFound, contract.ErrTypeConfigNotFound, true},
	{clients.ErrInvalidKubeconfig, contract.ErrTypeInvalidKubeconfig, true},
	{clients.ErrUnauthorized, contract.ErrTypeUnauthorized, true},
	{clients.ErrKubeVirtAPIMissing, contract.ErrTypeKubeVirtMissing, true},
	{clients.ErrAmbiguousPlacement, contract.ErrTypeAmbiguousPlacement, true},
	{clients.ErrClusterUnreachable, contract.ErrTypeClusterUnreachable, false},
}

func classifyClientsError(err error) (errType string, final, ok bool) {
	for _, c := range clientsErrorTypes {
		if errors.Is(err, c.sentinel) {
			return c.errType, c.final, true
		}
	}
	return "", false, false
}

// isFinal says whether err is one of the final errors above, which the
// workflow does not retry.
func isFinal(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.NonRetryable()
}

// fromPlan turns the planner's errors into application errors with the
// planner's message as is: it already names the Machine and the field.
func fromPlan(err error) error {
	var spec *vmplan.SpecError
	var wait *vmplan.WaitingError
	switch {
	case errors.As(err, &spec):
		return newAppError(contract.ErrTypeInvalidSpec, true, nil, "%s", spec.Message)
	case errors.As(err, &wait):
		return newAppError(contract.ErrTypeWaiting, false, nil, "%s", wait.Message)
	}
	return err
}

// newAppError makes the application error; a cause's text joins the
// message. The workflows report a failure's message alone (on the
// Machine's status and its Events), so a cause kept apart, as Temporal
// keeps it, would leave "validate KubevirtConfig "x"" without saying
// what is wrong with it.
func newAppError(errType string, final bool, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	if final {
		return temporal.NewNonRetryableApplicationError(msg, errType, nil)
	}
	return temporal.NewApplicationError(msg, errType)
}

// invalidSpec is the error for a Machine spec that can never work. field is
// the path of the offending field, e.g. "spec.disks[1].sizeGB".
func invalidSpec(m contract.MachineRef, field, format string, args ...any) error {
	return fromPlan(vmplan.InvalidSpec(m, field, format, args...))
}

// conflict is the error for an object we would create that already exists
// without our managed-by label: it belongs to someone else.
func conflict(cluster, kind, namespace, name string) error {
	return newAppError(contract.ErrTypeConflict, true, nil,
		"%s %s on %s exists and is not managed by machineflow (label %s); refusing to adopt or overwrite it",
		kind, objectName(namespace, name), cluster, managedBySelector())
}

// waiting is the retryable error for a dependency that does not exist yet.
func waiting(format string, args ...any) error {
	return newAppError(contract.ErrTypeWaiting, false, nil, format, args...)
}

// bootFailed is the final error of a VM that cannot reach Running.
func bootFailed(m contract.MachineRef, reason, message string) error {
	msg := fmt.Sprintf("VirtualMachine %s/%s failed to boot: %s", m.Namespace, m.Name, reason)
	if message != "" {
		msg += ": " + message
	}
	return newAppError(contract.ErrTypeBootFailed, true, nil, "%s", msg)
}

func machineNotFound(m contract.MachineRef) error {
	return newAppError(contract.ErrTypeMachineNotFound, true, nil, "Machine %s/%s not found on the supervisor", m.Namespace, m.Name)
}

func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
