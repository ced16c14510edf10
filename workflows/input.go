package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// DefaultBootTimeout bounds the wait for a VM to run when
	// ProvisionInput.BootTimeout is empty.
	DefaultBootTimeout = 15 * time.Minute
	// MaxBootTimeout keeps a typo ("150h") from holding a Machine in
	// Creating for days.
	MaxBootTimeout = 24 * time.Hour

	// ErrTypeInvalidInput is the application error type of a workflow
	// started with an input that can never succeed.
	ErrTypeInvalidInput = "InvalidWorkflowInput"
)

// Validate reports every problem of the input, naming the JSON field.
func (in ProvisionInput) Validate() error {
	errs := []error{validateMachineRef(in.Namespace, in.Name)}
	if in.KubevirtConfig != "" {
		errs = append(errs, dnsSubdomain("kubevirtConfig", in.KubevirtConfig))
	}
	if _, err := in.bootTimeout(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// bootTimeout parses BootTimeout, defaulting to DefaultBootTimeout.
func (in ProvisionInput) bootTimeout() (time.Duration, error) {
	if in.BootTimeout == "" {
		return DefaultBootTimeout, nil
	}
	d, err := time.ParseDuration(in.BootTimeout)
	if err != nil {
		return 0, fmt.Errorf("bootTimeout %q: not a Go duration such as \"15m\"", in.BootTimeout)
	}
	if d <= 0 || d > MaxBootTimeout {
		return 0, fmt.Errorf("bootTimeout %q: must be more than 0 and at most %s", in.BootTimeout, MaxBootTimeout)
	}
	return d, nil
}

// Validate reports every problem of the input, naming the JSON field.
func (in DeprovisionInput) Validate() error {
	return validateMachineRef(in.Namespace, in.Name)
}

func validateMachineRef(namespace, name string) error {
	var errs []error
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", namespace, strings.Join(msgs, "; ")))
	}
	return errors.Join(append(errs, dnsSubdomain("name", name))...)
}

func dnsSubdomain(field, value string) error {
	if msgs := validation.IsDNS1123Subdomain(value); len(msgs) > 0 {
		return fmt.Errorf("%s %q: %s", field, value, strings.Join(msgs, "; "))
	}
	return nil
}

// invalidInput turns a validation error into the workflow's final error:
// retrying the workflow with the same input cannot fix it.
func invalidInput(workflowType string, err error) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s input: %s", workflowType, strings.ReplaceAll(err.Error(), "\n", "; ")),
		ErrTypeInvalidInput, nil)
}
