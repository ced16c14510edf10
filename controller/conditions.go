package controller

import (
	"fmt"
	"strings"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/machineflow/machineflow/workflows"
)

// Conditions the reconciler owns on a Machine. The workflows own the
// phase and their Provisioning condition; these say what the controller
// knows from Temporal and from the Machine's generation.
const (
	// ConditionLifecycleWorkflow is the latest lifecycle workflow of the
	// Machine: Unknown while it runs, True once it completed, False when
	// it failed (the message says why and when it is retried).
	ConditionLifecycleWorkflow = "LifecycleWorkflow"
	// ConditionSpecApplied says whether the VM was built from the current
	// generation of the Machine's spec.
	ConditionSpecApplied = "SpecApplied"
	// ConditionISOEjected is the latest EjectISO run of a Machine booted
	// from an ISO: Unknown while it runs, True once the ISO is gone, False
	// when it failed (the message says why and when it is retried).
	ConditionISOEjected = "ISOEjected"
)

// Reasons of ConditionLifecycleWorkflow.
const (
	ReasonProvisionRunning   = "ProvisionRunning"
	ReasonProvisionCompleted = "ProvisionCompleted"
	ReasonProvisionFailed    = "ProvisionFailed"
	ReasonDeprovisionRunning = "DeprovisionRunning"
	ReasonDeprovisionFailed  = "DeprovisionFailed"
	// ReasonProvisionRetrying and ReasonDeprovisionRetrying: the run is
	// open and retrying a step that failed; the message says why.
	ReasonProvisionRetrying   = "ProvisionRetrying"
	ReasonDeprovisionRetrying = "DeprovisionRetrying"
)

// Reasons of ConditionISOEjected.
const (
	ReasonISOEjectRunning   = "EjectISORunning"
	ReasonISOEjectCompleted = "EjectISOCompleted"
	ReasonISOEjectFailed    = "EjectISOFailed"
	ReasonISOEjectRetrying  = "EjectISORetrying"
)

// Reasons of ConditionSpecApplied.
const (
	ReasonSpecApplied = "Applied"
	// ReasonUpdateNotSupported: the spec changed after the VM was built
	// and machineflow does not update VMs.
	ReasonUpdateNotSupported = "UpdateNotSupported"
)

// Event reasons, one per workflow transition.
const (
	EventProvisionStarted     = "ProvisionStarted"
	EventProvisionCompleted   = "ProvisionCompleted"
	EventProvisionFailed      = "ProvisionFailed"
	EventDeprovisionStarted   = "DeprovisionStarted"
	EventDeprovisionCompleted = "DeprovisionCompleted"
	EventDeprovisionFailed    = "DeprovisionFailed"
	EventUpdateNotSupported   = ReasonUpdateNotSupported
	EventISOEjectStarted      = "EjectISOStarted"
	EventISOEjected           = "ISOEjected"
	EventISOEjectFailed       = "EjectISOFailed"
	EventProvisionRetrying    = ReasonProvisionRetrying
	EventDeprovisionRetrying  = ReasonDeprovisionRetrying
	EventISOEjectRetrying     = ReasonISOEjectRetrying
)

// condition is a Machine condition without its transition time.
type condition struct {
	Type, Status, Reason, Message string
}

// workflowCondition describes a run as ConditionLifecycleWorkflow, or an
// EjectISO run as ConditionISOEjected. The message names the run, so a new
// run is a new condition (and one event).
func workflowCondition(kind workflowKind, r Run) condition {
	condType := ConditionLifecycleWorkflow
	name, running, completed, failed, retrying := workflows.ProvisionMachineName, ReasonProvisionRunning, ReasonProvisionCompleted, ReasonProvisionFailed, ReasonProvisionRetrying
	switch kind {
	case deprovisionKind:
		name, running, failed, retrying = workflows.DeprovisionMachineName, ReasonDeprovisionRunning, ReasonDeprovisionFailed, ReasonDeprovisionRetrying
	case ejectISOKind:
		condType = ConditionISOEjected
		name, running, completed, failed, retrying = workflows.EjectISOName, ReasonISOEjectRunning, ReasonISOEjectCompleted, ReasonISOEjectFailed, ReasonISOEjectRetrying
	}
	subject := fmt.Sprintf("%s %s run %s (attempt %d)", name, r.WorkflowID, r.RunID, max(r.Attempt, 1))
	switch r.State {
	case StateCompleted:
		return condition{condType, string(metav1.ConditionTrue), completed, subject + " completed"}
	case StateFailed:
		msg := subject + " failed"
		if r.Failure != nil {
			msg += ": " + r.Failure.Reason + ": " + r.Failure.Message
		}
		if !r.RetryAt.IsZero() {
			msg += "; next attempt at " + r.RetryAt.UTC().Format(time.RFC3339)
		}
		return condition{condType, string(metav1.ConditionFalse), failed, msg}
	default:
		if r.Retrying != nil {
			return condition{condType, string(metav1.ConditionUnknown), retrying,
				subject + " is running and retrying a step that failed: " + r.Retrying.Reason + ": " + r.Retrying.Message}
		}
		return condition{condType, string(metav1.ConditionUnknown), running, subject + " is running"}
	}
}

// retrying says the condition reports an open run retrying a step.
func (c condition) retrying() bool {
	switch c.Reason {
	case ReasonProvisionRetrying, ReasonDeprovisionRetrying, ReasonISOEjectRetrying:
		return true
	}
	return false
}

// quiet says that the change from prev to c is not worth an Event: the
// same open run was retrying a step and still is, with a failure that
// reads differently (a countdown, another address), or no longer is (its
// end will be announced).
func (c condition) quiet(prev *v1alpha1.MachineCondition) bool {
	if prev == nil || !(condition{Reason: prev.Reason}).retrying() {
		return false
	}
	run, _, ok := strings.Cut(prev.Message, " is running")
	return ok && strings.HasPrefix(c.Message, run+" is running")
}

// specAppliedCondition compares the generation a completed provision was
// started for with the Machine's.
func specAppliedCondition(m *v1alpha1.Machine, r Run) condition {
	if r.Generation == m.Generation {
		return condition{ConditionSpecApplied, string(metav1.ConditionTrue), ReasonSpecApplied,
			fmt.Sprintf("generation %d is applied", r.Generation)}
	}
	return condition{ConditionSpecApplied, string(metav1.ConditionFalse), ReasonUpdateNotSupported,
		fmt.Sprintf("generation %d observed, generation %d applied: machineflow does not update a provisioned VM; "+
			"the change takes effect when the Machine is re-created", m.Generation, r.Generation)}
}

// setCondition puts c into conds, unique by type, and reports whether
// anything changed. The transition time moves only with the status.
func setCondition(conds *[]v1alpha1.MachineCondition, c condition, now time.Time) bool {
	next := v1alpha1.MachineCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message,
		LastTransitionTime: metav1.NewTime(now)}
	for i, cur := range *conds {
		if cur.Type != c.Type {
			continue
		}
		if cur.Status == c.Status && cur.Reason == c.Reason && cur.Message == c.Message {
			return false
		}
		if cur.Status == c.Status {
			next.LastTransitionTime = cur.LastTransitionTime
		}
		(*conds)[i] = next
		return true
	}
	*conds = append(*conds, next)
	return true
}

// event is the Kubernetes Event a condition change announces; ok is false
// for changes that are not worth one.
func (c condition) event() (eventType, reason string, ok bool) {
	switch c.Reason {
	case ReasonProvisionRunning:
		return corev1.EventTypeNormal, EventProvisionStarted, true
	case ReasonProvisionCompleted:
		return corev1.EventTypeNormal, EventProvisionCompleted, true
	case ReasonProvisionFailed:
		return corev1.EventTypeWarning, EventProvisionFailed, true
	case ReasonDeprovisionRunning:
		return corev1.EventTypeNormal, EventDeprovisionStarted, true
	case ReasonDeprovisionFailed:
		return corev1.EventTypeWarning, EventDeprovisionFailed, true
	case ReasonUpdateNotSupported:
		return corev1.EventTypeWarning, EventUpdateNotSupported, true
	case ReasonISOEjectRunning:
		return corev1.EventTypeNormal, EventISOEjectStarted, true
	case ReasonISOEjectCompleted:
		return corev1.EventTypeNormal, EventISOEjected, true
	case ReasonISOEjectFailed:
		return corev1.EventTypeWarning, EventISOEjectFailed, true
	case ReasonProvisionRetrying, ReasonDeprovisionRetrying, ReasonISOEjectRetrying:
		return corev1.EventTypeWarning, c.Reason, true
	}
	return "", "", false
}

// conditionOfType is a copy of the condition of condType in conds, nil
// when there is none.
func conditionOfType(conds []v1alpha1.MachineCondition, condType string) *v1alpha1.MachineCondition {
	for _, c := range conds {
		if c.Type == condType {
			return &c
		}
	}
	return nil
}
