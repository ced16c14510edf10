package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
)

// TestClassifiedMessagesSayWhatIsWrong: the workflows put an application
// error's message, without its cause, on the Machine's status, so the
// message must carry what went wrong and not only what was being done;
// a request that timed out is an unreachable cluster, not the activity's
// own deadline.
func TestClassifiedMessagesSayWhatIsWrong(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name, errType string
		final         bool
		err           error
		want          string
	}{
		{"clients error", contract.ErrTypeInvalidKubeconfig, true,
			&clients.Error{Kind: clients.ErrInvalidKubeconfig, Config: "c", Reason: "Secret ns/c-kubeconfig not found"},
			`place Machine ns/vm: KubevirtConfig "c": invalid kubeconfig: Secret ns/c-kubeconfig not found`},
		{"API status", contract.ErrTypeUnauthorized, true,
			apierrors.NewForbidden(schema.GroupResource{Resource: "virtualmachines"}, "vm", errors.New("RBAC says no")),
			`place Machine ns/vm: virtualmachines "vm" is forbidden: RBAC says no`},
		{"transport", contract.ErrTypeClusterUnreachable, false, refused, "place Machine ns/vm: dial tcp: connect: connection refused"},
		{"request timeout", contract.ErrTypeClusterUnreachable, false,
			clients.ClassifyRemoteError("c", fmt.Errorf("Get \"https://10.0.0.1/apis\": %w", context.DeadlineExceeded)),
			`place Machine ns/vm: KubevirtConfig "c": cluster unreachable: Get "https://10.0.0.1/apis": context deadline exceeded`},
		// What the client's discovery returns while a restarted API server
		// has not published its CRDs yet: retried, not a failed Machine.
		{"API not in discovery", contract.ErrTypeClusterUnreachable, false,
			&apiutil.ErrResourceDiscoveryFailed{kubevirtv1.GroupVersion: &meta.NoResourceMatchError{PartialResource: kubevirtv1.GroupVersion.WithResource("")}},
			"place Machine ns/vm: API not served (yet): unable to retrieve the complete list of server APIs: kubevirt.io/v1: no matches for kubevirt.io/v1, Resource="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appErr := requireAppError(t, classify(tc.err, "place Machine ns/vm"), tc.errType, tc.final)
			require.Equal(t, tc.want, appErr.Message())
		})
	}
}

// requireAppError asserts err is an ApplicationError of errType with the
// given finality.
func requireAppError(t *testing.T, err error, errType string, final bool) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr, "not an ApplicationError: %v", err)
	require.Equal(t, errType, appErr.Type(), "error: %v", err)
	require.Equal(t, final, appErr.NonRetryable(), "error: %v", err)
	return appErr
}
