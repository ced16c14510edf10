package vmplan

import (
	"fmt"

	"github.com/machineflow/machineflow/activities/contract"
)

// SpecError is a Machine spec that can never work: retrying cannot fix it.
// Its message names the Machine and the field, never a payload or a
// credential, because it reaches history and the Machine's status.
type SpecError struct {
	Message string
}

func (e *SpecError) Error() string { return e.Message }

// WaitingError is a Machine that references something which does not exist
// yet (an address another controller has not allocated): a later try may
// succeed.
type WaitingError struct {
	Message string
}

func (e *WaitingError) Error() string { return e.Message }

// InvalidSpec is the SpecError for field, a path such as
// "spec.disks[1].sizeGB".
func InvalidSpec(m contract.MachineRef, field, format string, args ...any) error {
	return &SpecError{Message: fmt.Sprintf("Machine %s/%s: %s: %s", m.Namespace, m.Name, field, fmt.Sprintf(format, args...))}
}

func waiting(format string, args ...any) error {
	return &WaitingError{Message: fmt.Sprintf(format, args...)}
}
