package kubevirtadmission

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/childproc"
)

const (
	// Namespace is KubeVirt's install namespace on every cluster: its
	// KubeVirt CR and the service accounts KubeVirt's admitters trust.
	Namespace = "kubevirt"
	// ControllerServiceAccount is virt-controller's identity, the one the
	// simulator acts as: KubeVirt lets only its own components write a
	// VMI's status.
	ControllerServiceAccount = "system:serviceaccount:" + Namespace + ":kubevirt-controller"
	// BinaryName is the webhook server in the binary directory.
	BinaryName = "kubevirt-webhook"

	defaultReadyTimeout = time.Minute
	stopGrace           = 10 * time.Second
	// refusal is what KubeVirt's VM validator answers the probe.
	refusal = `admission webhook "virtualmachine-validator.kubevirt.io" denied the request`
)

// Options say which API server to serve and where the process's files go.
type Options struct {
	// Bin is the kubevirt-webhook binary.
	Bin string
	// Kubeconfig is an administrator's kubeconfig of the API server; it
	// holds a client key and is written only to Dir.
	Kubeconfig []byte
	// Client is the harness's own admin client of the same API server,
	// for the liveness probe.
	Client client.Client
	// Dir holds the kubeconfig and the ready file; it must exist.
	Dir string
	// Name names the process in logs and errors.
	Name string
	// Out receives the server's output; nil keeps only its end, for
	// errors.
	Out io.Writer
	// Log gets the process's start and stop lines.
	Log *slog.Logger
	// ReadyTimeout bounds Start; zero is one minute.
	ReadyTimeout time.Duration
}

// Server is a running webhook server, registered and live.
type Server struct {
	opts Options
	proc *childproc.Process
	tail *childproc.Tail
}

// Start starts the server and waits until it is live. On error nothing is
// left running.
func Start(ctx context.Context, o Options) (*Server, error) {
	s := &Server{opts: o}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	o := s.opts
	kubeconfig := filepath.Join(o.Dir, "kubevirt-webhook.kubeconfig")
	if err := os.WriteFile(kubeconfig, o.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("%s: %w", o.Name, err)
	}
	ready := filepath.Join(o.Dir, "kubevirt-webhook.ready")
	if err := os.Remove(ready); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", o.Name, err)
	}
	s.tail = &childproc.Tail{Max: 4 << 10}
	out := io.Writer(s.tail)
	if o.Out != nil {
		out = io.MultiWriter(o.Out, s.tail)
	}
	proc, err := childproc.Start(childproc.Command{
		Name: o.Name, Path: o.Bin, Out: out, Log: o.Log,
		Args: []string{"-kubeconfig", kubeconfig, "-namespace", Namespace, "-ready-file", ready},
	})
	if err != nil {
		return err
	}
	s.proc = proc
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(o.ReadyTimeout, defaultReadyTimeout))
	defer cancel()
	if err := s.waitLive(ctx, ready); err != nil {
		err = fmt.Errorf("%s: %w", o.Name, errors.Join(err, proc.Stop(stopGrace)))
		if t := s.tail.String(); t != "" {
			err = fmt.Errorf("%w; its last output:\n%s", err, t)
		}
		return err
	}
	return nil
}

// waitLive waits for the ready file, then until the API server refuses
// the probe with KubeVirt's message: the API server picks up new webhook
// configurations a moment after they are written.
func (s *Server) waitLive(ctx context.Context, ready string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if _, err := os.Stat(ready); err == nil {
			last = Probe(ctx, s.opts.Client)
			if last == nil {
				return nil
			}
		}
		select {
		case <-s.proc.Done():
			return fmt.Errorf("exited before its webhooks were live (%v)", s.proc.Err())
		case <-ctx.Done():
			return fmt.Errorf("webhooks not live in time (last probe: %v): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}

// Probe fails unless the API server behind c refuses, with KubeVirt's
// VM validator's message, a VirtualMachine whose disk has no volume: a
// VM the CRD schema accepts and only KubeVirt's admission refuses. It
// is a dry run and leaves nothing behind.
func Probe(ctx context.Context, c client.Client) error {
	vm := &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Name: "admission-probe", Namespace: metav1.NamespaceDefault},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: new(kubevirtv1.RunStrategyHalted),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{Devices: kubevirtv1.Devices{Disks: []kubevirtv1.Disk{{Name: "missing"}}}},
			}},
		},
	}
	err := c.Create(ctx, vm, client.DryRunAll)
	switch {
	case err == nil:
		return errors.New("the API server accepted a VirtualMachine KubeVirt refuses: no KubeVirt admission")
	case !strings.Contains(err.Error(), refusal):
		return fmt.Errorf("the probe VirtualMachine was refused, but not by KubeVirt: %w", err)
	}
	return nil
}

// Stop stops the server. The webhook configurations stay, as when virt-api
// goes down: with failurePolicy Fail, VM writes fail until it is back.
func (s *Server) Stop() error {
	if err := s.proc.Stop(stopGrace); err != nil {
		return fmt.Errorf("stopping %s: %w", s.opts.Name, err)
	}
	return nil
}

// Restart starts a stopped server again, after its API server came back:
// it registers its new address and CA and waits until it is live.
func (s *Server) Restart(ctx context.Context) error {
	if !s.proc.Exited() {
		return fmt.Errorf("restarting %s: still running", s.opts.Name)
	}
	return s.start(ctx)
}

// MinimalVM is the smallest VirtualMachine KubeVirt admits: halted, with
// memory and no devices. Tests that need some VM, not a particular one,
// start from it.
func MinimalVM(namespace, name string) *kubevirtv1.VirtualMachine {
	return &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: new(kubevirtv1.RunStrategyHalted),
			Template:    &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: minimalSpec()},
		},
	}
}

// MinimalVMI is the smallest VirtualMachineInstance KubeVirt admits.
func MinimalVMI(namespace, name string) *kubevirtv1.VirtualMachineInstance {
	return &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       minimalSpec(),
	}
}

func minimalSpec() kubevirtv1.VirtualMachineInstanceSpec {
	return kubevirtv1.VirtualMachineInstanceSpec{Domain: kubevirtv1.DomainSpec{Resources: kubevirtv1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}}}
}
