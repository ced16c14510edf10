package activities

import (
	"context"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

// ensureObject is create-or-adopt: it creates desired unless an object of
// that name exists, and returns the object as it is on the server. An
// existing object without our managed-by label is a final conflict; it is
// never modified.
func ensureObject(ctx context.Context, c client.Client, cluster, kind string, desired client.Object) (client.Object, bool, error) {
	key := client.ObjectKeyFromObject(desired)
	what := fmt.Sprintf("%s %s on %s", kind, objectName(key.Namespace, key.Name), cluster)
	existing := emptyLike(desired)
	err := c.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) {
		obj := desired.DeepCopyObject().(client.Object)
		err = c.Create(ctx, obj)
		if err == nil {
			return obj, true, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, false, classify(err, "create "+what)
		}
		// Lost a race with another creator: judge what won.
		err = c.Get(ctx, key, existing)
	}
	if err != nil {
		return nil, false, classify(err, "get "+what)
	}
	if !isManaged(existing) {
		return nil, false, conflict(cluster, kind, key.Namespace, key.Name)
	}
	return existing, false, nil
}

// emptyLike returns a zero object of obj's type (and kind, for unstructured
// objects) to decode into: decoding into a filled struct would merge maps.
func emptyLike(obj client.Object) client.Object {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		out := &unstructured.Unstructured{}
		out.SetGroupVersionKind(u.GroupVersionKind())
		return out
	}
	return reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
}

func isManaged(obj client.Object) bool {
	return obj.GetLabels()[names.ManagedByLabel] == names.ManagedByValue
}

func managedBySelector() string {
	return names.ManagedByLabel + "=" + names.ManagedByValue
}

// ownedBy selects the objects machineflow created for one Machine.
func ownedBy(machine string) client.MatchingLabels {
	return client.MatchingLabels(names.ManagedLabels(machine))
}
