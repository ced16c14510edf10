package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/internal/names"
)

// Search attributes (Keyword) the workflows set so that the UI and
// `temporal workflow list --query` can filter by Machine, cluster and phase.
// They must be registered on the Temporal namespace (names.KeywordSearchAttributes;
// `temporal operator search-attribute create --name MachineName --type Keyword`).
var (
	MachineNamespaceKey = temporal.NewSearchAttributeKeyKeyword(names.SearchAttrMachineNamespace)
	MachineNameKey      = temporal.NewSearchAttributeKeyKeyword(names.SearchAttrMachineName)
	KubevirtConfigKey   = temporal.NewSearchAttributeKeyKeyword(names.SearchAttrKubevirtConfig)
	MachinePhaseKey     = temporal.NewSearchAttributeKeyKeyword(names.SearchAttrMachinePhase)
)

// SearchAttributeKeys lists every search attribute the workflows use, for
// registering them on a namespace.
func SearchAttributeKeys() []temporal.SearchAttributeKey {
	return []temporal.SearchAttributeKey{MachineNamespaceKey, MachineNameKey, KubevirtConfigKey, MachinePhaseKey}
}

// machineSearchAttributes are set at start and upserted again by the
// workflow, so a run started without them (CLI, UI) is still searchable.
func machineSearchAttributes(namespace, name string) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{MachineNamespaceKey.ValueSet(namespace), MachineNameKey.ValueSet(name)}
}

// searchAttributes upserts values only when they change, so a step that
// repeats a phase adds no history event.
type searchAttributes struct {
	phase, config string
}

func (s *searchAttributes) setPhase(ctx workflow.Context, phase string) error {
	if phase == s.phase {
		return nil
	}
	s.phase = phase
	return workflow.UpsertTypedSearchAttributes(ctx, MachinePhaseKey.ValueSet(phase))
}

func (s *searchAttributes) setConfig(ctx workflow.Context, config string) error {
	if config == "" || config == s.config {
		return nil
	}
	s.config = config
	return workflow.UpsertTypedSearchAttributes(ctx, KubevirtConfigKey.ValueSet(config))
}
