package registration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	"go.uber.org/fx"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/background"
	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/names"
)

// Defaults of Options.
const (
	DefaultProviderName = "kubevirt-provider"
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = 5 * time.Minute
	// DefaultMaxAttempts with the default backoff waits 1s, 2s, ... 256s
	// between attempts and gives up after about eight and a half minutes.
	DefaultMaxAttempts = 10
	// DefaultAttemptTimeout bounds one attempt's supervisor requests: the
	// supervisor's REST config has no request timeout (it also serves the
	// controller's watches), so a server that accepts and never answers
	// would otherwise hold the first attempt until the worker stops.
	DefaultAttemptTimeout = 30 * time.Second
	// UnknownRegion is the region of a MachineProvider created without a
	// Vitistack that names one: the CRD requires a non-empty region.
	UnknownRegion = "unknown"
)

// Values written into a created MachineProvider.
const (
	providerType       = string(v1alpha1.MachineProviderTypeKubevirt)
	authCredentials    = "credentials"
	kubevirtConfigKey  = "kubevirtConfig"
	kubeconfigKeyParam = "secretKey"
)

// Options configure the registration.
type Options struct {
	// ProviderName names the MachineProvider and the KubevirtConfig it is
	// created from (NAME_MACHINE_PROVIDER).
	ProviderName string
	// VitistackName, when set, names the Vitistack whose
	// spec.machineProviders may already list the provider and whose
	// spec.region the provider gets (VITISTACK_NAME).
	VitistackName string
	// ConfigNamespace is where the kubeconfig Secret lives when the
	// KubevirtConfig names no namespace (CONFIG_NAMESPACE).
	ConfigNamespace string
	// RetryInitial, RetryMax and MaxAttempts bound the retries of a failed
	// registration; zero means the defaults.
	RetryInitial, RetryMax time.Duration
	MaxAttempts            int
	// AttemptTimeout bounds one attempt; zero means DefaultAttemptTimeout.
	AttemptTimeout time.Duration
}

// Validate names every invalid option by its setting.
func (o Options) Validate() error {
	var p check.Problems
	p.DNSSubdomain("NAME_MACHINE_PROVIDER", o.ProviderName)
	if o.VitistackName != "" {
		p.DNSSubdomain("VITISTACK_NAME", o.VitistackName)
	}
	if o.RetryInitial < 0 || o.RetryMax < 0 || o.MaxAttempts < 0 {
		p.Addf("registration retries: initial %s, max %s, attempts %d: must not be negative", o.RetryInitial, o.RetryMax, o.MaxAttempts)
	}
	if o.AttemptTimeout < 0 {
		p.Addf("registration attempt timeout %s: must not be negative", o.AttemptTimeout)
	}
	return p.Err()
}

// Outcome says why a registration attempt succeeded.
type Outcome string

const (
	// OutcomeListed: the Vitistack lists the provider.
	OutcomeListed Outcome = "ListedByVitistack"
	// OutcomeExists: a MachineProvider of that name exists (possibly made
	// by another worker replica a moment ago).
	OutcomeExists Outcome = "Exists"
	// OutcomeCreated: this attempt created it.
	OutcomeCreated Outcome = "Created"
)

// Registrar makes sure the worker's MachineProvider exists on the
// supervisor.
type Registrar struct {
	client client.Client
	opts   Options
	log    *slog.Logger
}

// New checks the options and fills in their defaults.
func New(c client.Client, o Options, log *slog.Logger) (*Registrar, error) {
	if c == nil {
		return nil, errors.New("registration: supervisor client is nil")
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("registration: %w", err)
	}
	if o.RetryInitial == 0 {
		o.RetryInitial = DefaultRetryInitial
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	o.RetryMax = max(o.RetryMax, o.RetryInitial)
	return &Registrar{client: c, opts: o, log: log.With("machineProvider", o.ProviderName)}, nil
}

// Ensure makes one registration attempt, bounded by AttemptTimeout.
func (r *Registrar) Ensure(ctx context.Context) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.AttemptTimeout)
	defer cancel()
	name := r.opts.ProviderName
	region := UnknownRegion
	if v := r.opts.VitistackName; v != "" {
		vs := &v1alpha1.Vitistack{}
		if err := r.client.Get(ctx, client.ObjectKey{Name: v}, vs); err != nil {
			return "", describe(err, fmt.Sprintf("get Vitistack %q (VITISTACK_NAME)", v))
		}
		if slices.ContainsFunc(vs.Spec.MachineProviders, func(p v1alpha1.VitistackProviderReference) bool { return p.Name == name }) {
			return OutcomeListed, nil
		}
		if vs.Spec.Region != "" {
			region = vs.Spec.Region
		}
	}
	err := r.client.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.MachineProvider{})
	switch {
	case err == nil:
		return OutcomeExists, nil
	case !apierrors.IsNotFound(err):
		return "", describe(err, fmt.Sprintf("get MachineProvider %q", name))
	}
	kvc := &v1alpha1.KubevirtConfig{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: name}, kvc); err != nil {
		return "", describe(err, fmt.Sprintf("get KubevirtConfig %q to create MachineProvider %q from (NAME_MACHINE_PROVIDER)", name, name))
	}
	err = r.client.Create(ctx, r.provider(kvc, region))
	switch {
	case err == nil:
		return OutcomeCreated, nil
	case apierrors.IsAlreadyExists(err):
		return OutcomeExists, nil
	}
	return "", describe(err, fmt.Sprintf("create MachineProvider %q", name))
}

// provider is the MachineProvider made from a KubevirtConfig: the
// operator's fields (type, region, credentials pointing at the kubeconfig
// Secret, whose namespace defaults as in the ClientManager) and
// machineflow's managed-by label.
func (r *Registrar) provider(kvc *v1alpha1.KubevirtConfig, region string) *v1alpha1.MachineProvider {
	secretNamespace := kvc.Spec.SecretNamespace
	if secretNamespace == "" {
		secretNamespace = r.opts.ConfigNamespace
	}
	return &v1alpha1.MachineProvider{
		ObjectMeta: metav1.ObjectMeta{
			Name:   r.opts.ProviderName,
			Labels: map[string]string{names.ManagedByLabel: names.ManagedByValue},
		},
		Spec: v1alpha1.MachineProviderSpec{
			ProviderType: providerType,
			DisplayName:  "KubeVirt " + kvc.Name,
			Region:       region,
			Authentication: v1alpha1.ProviderAuthentication{
				Type:           authCredentials,
				CredentialsRef: &v1alpha1.CredentialsReference{SecretName: kvc.Spec.KubeconfigSecretRef, Namespace: secretNamespace},
				Parameters:     map[string]string{kubeconfigKeyParam: names.KubeconfigSecretKey},
			},
			Config: map[string]string{kubevirtConfigKey: kvc.Name},
		},
	}
}

// attemptError is a failed attempt; final says retrying cannot help.
type attemptError struct {
	msg   string
	final bool
	cause error
}

func (e *attemptError) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

func (e *attemptError) Unwrap() error { return e.cause }

// describe says what failed. A request the API server rejects as invalid
// fails the same way every time; anything else (missing objects, RBAC,
// an unreachable server) may be fixed while the worker runs.
func describe(err error, what string) error {
	final := apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
	if apierrors.IsNotFound(err) {
		return &attemptError{msg: what + ": not found"}
	}
	return &attemptError{msg: what, final: final, cause: err}
}

// Run retries Ensure with backoff until it succeeds, fails for good, runs
// out of attempts or ctx ends. Every failure is logged with its reason;
// none is returned, because the worker runs whether the provider is
// registered or not.
func (r *Registrar) Run(ctx context.Context) {
	backoff := wait.Backoff{Duration: r.opts.RetryInitial, Factor: 2, Cap: r.opts.RetryMax, Steps: r.opts.MaxAttempts}
	for attempt := 1; ; attempt++ {
		outcome, err := r.Ensure(ctx)
		if err == nil {
			r.log.Info("MachineProvider registered", "outcome", string(outcome), "vitistack", r.opts.VitistackName)
			return
		}
		if ctx.Err() != nil {
			return
		}
		var ae *attemptError
		if errors.As(err, &ae) && ae.final {
			r.log.Error("MachineProvider registration failed for good; the worker runs without it", "attempt", attempt, "error", err)
			return
		}
		if attempt >= r.opts.MaxAttempts {
			r.log.Error("MachineProvider registration gave up; the worker runs without it, fix the cause and restart a worker",
				"attempt", attempt, "error", err)
			return
		}
		delay := backoff.Step()
		r.log.Warn("MachineProvider registration failed, retrying", "attempt", attempt, "retryIn", delay, "error", err)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// Module registers the worker's MachineProvider in the background from
// fx's OnStart, and stops retrying on OnStop. It never fails start-up and
// adds no readiness check: Machines are provisioned with or without it.
var Module = fx.Module("registration", fx.Provide(New), fx.Invoke(start))

func start(lc fx.Lifecycle, r *Registrar) { background.Go(lc, "MachineProvider registration", r.Run) }
