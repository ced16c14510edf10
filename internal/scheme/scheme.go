// Package scheme builds the runtime.Scheme every machineflow client uses:
// Kubernetes built-ins, vitistack's v1alpha1, KubeVirt's v1 and CDI's
// v1beta1. NetworkAttachmentDefinitions are handled as unstructured objects,
// which spares a dependency for one small type.
package scheme

import (
	"fmt"

	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// New returns a scheme with all types machineflow reads or writes.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		v1alpha1.AddToScheme,
		kubevirtv1.AddToScheme,
		cdiv1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building scheme: %w", err)
		}
	}
	return s, nil
}
