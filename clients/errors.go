package clients

import (
	"context"
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
)

// Sentinels that every error of this package matches with errors.Is. The
// first three and the last two are final: retrying cannot fix them until
// someone edits a KubevirtConfig, a Secret, RBAC or the Machine.
// ErrClusterUnreachable is worth retrying.
var (
	// ErrConfigNotFound: the KubevirtConfig does not exist (or none exists).
	ErrConfigNotFound = errors.New("KubevirtConfig not found")
	// ErrInvalidKubeconfig: the kubeconfig Secret is missing, lacks the
	// kubeconfig key, is empty, or does not hold a usable kubeconfig.
	ErrInvalidKubeconfig = errors.New("invalid kubeconfig")
	// ErrUnauthorized: the cluster rejected the credentials (401) or they
	// lack a permission the operation needs (403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrClusterUnreachable: the cluster did not answer in time, refused the
	// connection or answered with a server error.
	ErrClusterUnreachable = errors.New("cluster unreachable")
	// ErrKubeVirtAPIMissing: the cluster answers but does not serve
	// kubevirt.io/v1 VirtualMachines.
	ErrKubeVirtAPIMissing = errors.New("kubevirt.io/v1 VirtualMachines not served")
	// ErrAmbiguousPlacement: no single KubevirtConfig can be chosen for a
	// Machine, because its VM exists on several clusters or on none.
	ErrAmbiguousPlacement = errors.New("cannot determine placement")
)

// Error is the error type of this package. Its message names the
// KubevirtConfig and/or Machine it concerns and is built only from names,
// our own reasons and causes that cannot carry Secret data (API status and
// transport errors); parse errors of kubeconfigs are never kept because
// client-go quotes their input.
type Error struct {
	// Kind is one of the sentinels above; errors.Is(err, Kind) holds.
	Kind error
	// Config is the KubevirtConfig's name, empty when none applies.
	Config string
	// Machine is "<namespace>/<name>" for placement errors.
	Machine string
	// Reason says what is wrong, in words safe to log.
	Reason string
	cause  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Machine != "" {
		b.WriteString("Machine ")
		b.WriteString(e.Machine)
		b.WriteString(": ")
	}
	if e.Config != "" {
		b.WriteString("KubevirtConfig \"")
		b.WriteString(e.Config)
		b.WriteString("\": ")
	}
	b.WriteString(e.Kind.Error())
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, sentinel) work for the error's Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the API or transport error behind e, if any.
func (e *Error) Unwrap() error { return e.cause }

// ClassifyRemoteError turns an error from a call to the KubeVirt cluster of
// config into an *Error: 401 and 403 become ErrUnauthorized, everything
// else (timeouts, refused connections, 5xx, throttling) ErrClusterUnreachable.
// NotFound and no-kind-match answers are the caller's to interpret and are
// returned unchanged, as are errors that are already classified and a
// cancelled ctx of the caller.
func ClassifyRemoteError(config string, err error) error {
	var typed *Error
	switch {
	case err == nil, errors.As(err, &typed), errors.Is(err, context.Canceled),
		apierrors.IsNotFound(err), meta.IsNoMatchError(err):
		return err
	case apierrors.IsUnauthorized(err):
		return &Error{Kind: ErrUnauthorized, Config: config, Reason: "the cluster rejected the credentials", cause: err}
	case apierrors.IsForbidden(err):
		return &Error{Kind: ErrUnauthorized, Config: config, Reason: "the credentials lack a permission", cause: err}
	default:
		return &Error{Kind: ErrClusterUnreachable, Config: config, cause: err}
	}
}
