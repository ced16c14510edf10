package activities

import (
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/machineflow/machineflow/clients"
)

// TestClassifiedMessagesSayWhatIsWrong: the workflows put an application
// error's message, without its cause, on the Machine's status, so the
// message must carry what went wrong and not only what was being done.
func TestClassifiedMessagesSayWhatIsWrong(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name, errType string
		final         bool
		err           error
		want          string
	}{
		{"clients error", ErrTypeInvalidKubeconfig, true,
			&clients.Error{Kind: clients.ErrInvalidKubeconfig, Config: "c", Reason: "Secret ns/c-kubeconfig not found"},
			`place Machine ns/vm: KubevirtConfig "c": invalid kubeconfig: Secret ns/c-kubeconfig not found`},
		{"API status", ErrTypeUnauthorized, true,
			apierrors.NewForbidden(schema.GroupResource{Resource: "virtualmachines"}, "vm", errors.New("RBAC says no")),
			`place Machine ns/vm: virtualmachines "vm" is forbidden: RBAC says no`},
		{"transport", ErrTypeClusterUnreachable, false, refused, "place Machine ns/vm: dial tcp: connect: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appErr := requireAppError(t, classify(tc.err, "place Machine ns/vm"), tc.errType, tc.final)
			require.Equal(t, tc.want, appErr.Message())
		})
	}
}
