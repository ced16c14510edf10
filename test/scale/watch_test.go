package scale

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// machineWatch follows the Machines of one supervisor namespace and
// records when it first saw each Running and when it saw each gone: the
// moments a user watching the supervisor would see. One watch costs the
// supervisor far less than polling 200 Machines, and its timing does not
// depend on a poll interval.
type machineWatch struct {
	mu      sync.Mutex
	present map[string]bool
	running map[string]time.Time
	gone    map[string]time.Time
	err     error // the latest failure to list or watch; retried
}

// watchMachines lists namespace, then watches it until ctx is done.
func watchMachines(ctx context.Context, c client.WithWatch, namespace string) (*machineWatch, error) {
	w := &machineWatch{present: map[string]bool{}, running: map[string]time.Time{}, gone: map[string]time.Time{}}
	rv, err := w.relist(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	go w.follow(ctx, c, namespace, rv)
	return w, nil
}

// relist records what a List shows, including Machines that went away
// unseen, and returns its resourceVersion to watch from.
func (w *machineWatch) relist(ctx context.Context, c client.Client, namespace string) (string, error) {
	list := &v1alpha1.MachineList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return "", fmt.Errorf("listing the Machines of %s: %w", namespace, err)
	}
	now := time.Now()
	listed := map[string]bool{}
	for i := range list.Items {
		listed[list.Items[i].Name] = true
		w.see(watch.Modified, &list.Items[i], now)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name := range w.present {
		if !listed[name] {
			delete(w.present, name)
			w.gone[name] = now
		}
	}
	return list.ResourceVersion, nil
}

func (w *machineWatch) follow(ctx context.Context, c client.WithWatch, namespace, rv string) {
	for ctx.Err() == nil {
		if rv == "" {
			var err error
			if rv, err = w.relist(ctx, c, namespace); err != nil {
				w.fail(err)
				sleep(ctx, time.Second)
				continue
			}
		}
		wi, err := c.Watch(ctx, &v1alpha1.MachineList{}, &client.ListOptions{Namespace: namespace,
			Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			w.fail(fmt.Errorf("watching the Machines of %s: %w", namespace, err))
			rv = ""
			sleep(ctx, time.Second)
			continue
		}
		rv = w.consume(wi, rv)
		wi.Stop()
	}
}

// consume records the events of one watch until it ends and returns the
// resourceVersion to resume from; "" means list again (the server could
// not resume, e.g. 410 Gone).
func (w *machineWatch) consume(wi watch.Interface, rv string) string {
	for ev := range wi.ResultChan() {
		switch ev.Type {
		case watch.Error:
			w.fail(fmt.Errorf("watch error: %w", apierrors.FromObject(ev.Object)))
			return ""
		case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
			m, ok := ev.Object.(*v1alpha1.Machine)
			if !ok {
				w.fail(fmt.Errorf("watch event %s with a %T", ev.Type, ev.Object))
				return ""
			}
			rv = m.ResourceVersion
			if ev.Type != watch.Bookmark {
				w.see(ev.Type, m, time.Now())
			}
		}
	}
	return rv
}

func (w *machineWatch) see(t watch.EventType, m *v1alpha1.Machine, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t == watch.Deleted {
		delete(w.present, m.Name)
		w.gone[m.Name] = at
		return
	}
	w.present[m.Name] = true
	if _, seen := w.running[m.Name]; !seen && m.Status.Phase == v1alpha1.MachinePhaseRunning {
		w.running[m.Name] = at
	}
}

func (w *machineWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

// await waits until every one of names has a time in the map that which
// selects (running or gone) and returns those times; on ctx's end it
// returns the names still missing and the latest watch failure.
func (w *machineWatch) await(ctx context.Context, names []string, which func(*machineWatch) map[string]time.Time) (map[string]time.Time, error) {
	for {
		w.mu.Lock()
		got := map[string]time.Time{}
		var missing []string
		for _, name := range names {
			if at, ok := which(w)[name]; ok {
				got[name] = at
			} else {
				missing = append(missing, name)
			}
		}
		lastErr := w.err
		w.mu.Unlock()
		if len(missing) == 0 {
			return got, nil
		}
		select {
		case <-ctx.Done():
			slices.Sort(missing)
			return got, fmt.Errorf("%d of %d Machines not there (%v; latest watch failure: %v): %v",
				len(missing), len(names), ctx.Err(), lastErr, firstOf(missing, 10))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func running(w *machineWatch) map[string]time.Time { return w.running }
func gone(w *machineWatch) map[string]time.Time    { return w.gone }

// firstOf is at most n of s, for messages.
func firstOf(s []string, n int) []string { return s[:min(n, len(s))] }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
