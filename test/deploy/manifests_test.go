package deploy

import (
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/machineflow/machineflow/internal/config"
	"github.com/machineflow/machineflow/internal/config/envflag"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

// externalSecrets are the Secrets the manifests use but never contain: the
// operator creates them (deploy/components/temporal-* say how).
var externalSecrets = []string{mtlsSecretName, apiKeySecretName}

// TestManifests checks what must hold in every kustomization: hardened
// pods, settings the binaries accept, and references between objects that
// resolve within the rendered output.
func TestManifests(t *testing.T) {
	for _, r := range roots(t) {
		t.Run(r.name, func(t *testing.T) {
			m := render(t, r)
			for _, d := range m.deployments(t) {
				checkPod(t, m.root+": Deployment "+d.Name, d.Spec.Template.Spec)
				if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "" {
					assert.NotNil(t, m.find("ServiceAccount", d.Namespace, sa), "%s: Deployment %s: ServiceAccount %s is not rendered", m.root, d.Name, sa)
				}
				checkSecretRefs(t, m.root+": Deployment "+d.Name, d.Spec.Template.Spec)
			}
			checkSettings(t, m)
			checkServices(t, m)
			checkBindings(t, m)
			checkRules(t, m)
		})
	}
}

// checkPod asserts the hardening the "restricted" Pod Security Standard
// asks for and more (read-only root, requests and limits, probes).
func checkPod(t *testing.T, where string, pod corev1.PodSpec) {
	psc := pod.SecurityContext
	require.NotNil(t, psc, "%s: no pod securityContext", where)
	require.NotEmpty(t, pod.Containers, where)
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		where := where + ": container " + c.Name
		sc := c.SecurityContext
		require.NotNil(t, sc, "%s: no securityContext", where)
		assert.True(t, ptr.Deref(sc.RunAsNonRoot, ptr.Deref(psc.RunAsNonRoot, false)), "%s: runAsNonRoot is not true", where)
		assert.True(t, ptr.Deref(sc.ReadOnlyRootFilesystem, false), "%s: readOnlyRootFilesystem is not true", where)
		assert.False(t, ptr.Deref(sc.AllowPrivilegeEscalation, true), "%s: allowPrivilegeEscalation is not false", where)
		assert.False(t, ptr.Deref(sc.Privileged, false), "%s: privileged", where)
		if assert.NotNil(t, sc.Capabilities, "%s: capabilities not dropped", where) {
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s: capabilities.drop", where)
			assert.Empty(t, sc.Capabilities.Add, "%s: capabilities.add", where)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if assert.NotNil(t, seccomp, "%s: no seccompProfile", where) {
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, seccomp.Type, "%s: seccompProfile", where)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			assert.False(t, c.Resources.Requests.Name(res, "").IsZero(), "%s: no %s request", where, res)
			assert.False(t, c.Resources.Limits.Name(res, "").IsZero(), "%s: no %s limit", where, res)
		}
		assert.NotEmpty(t, c.Image, where)
		assert.Contains(t, c.Image, ":", "%s: image %q has no tag", where, c.Image)
		assert.False(t, strings.HasSuffix(c.Image, ":latest"), "%s: image %q is :latest", where, c.Image)
		for name, p := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if !assert.NotNil(t, p, "%s: no %s", where, name) {
				continue
			}
			var port intstr.IntOrString
			switch {
			case p.HTTPGet != nil:
				port = p.HTTPGet.Port
			case p.TCPSocket != nil:
				port = p.TCPSocket.Port
			default:
				t.Errorf("%s: %s is neither httpGet nor tcpSocket", where, name)
				continue
			}
			assert.True(t, hasPort(c, port), "%s: %s port %s is not a container port", where, name, port.String())
		}
	}
}

func hasPort(c corev1.Container, port intstr.IntOrString) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
		if port.Type == intstr.String {
			return p.Name == port.StrVal
		}
		return p.ContainerPort == port.IntVal
	})
}

// checkSecretRefs allows only the documented external Secrets.
func checkSecretRefs(t *testing.T, where string, pod corev1.PodSpec) {
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			assert.Contains(t, externalSecrets, v.Secret.SecretName, "%s: volume %s: undocumented Secret", where, v.Name)
		}
	}
	for _, c := range pod.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				assert.Contains(t, externalSecrets, e.ValueFrom.SecretKeyRef.Name, "%s: env %s: undocumented Secret", where, e.Name)
			}
		}
	}
}

// checkSettings feeds each machineflow container's environment to the
// loaders the binaries use, and checks the settings that must agree with
// the pod around them.
func checkSettings(t *testing.T, m manifests) {
	for _, name := range []string{workerName, controllerName} {
		d := m.deployment(t, name)
		require.Len(t, d.Spec.Template.Spec.Containers, 1, "%s: Deployment %s", m.root, name)
		c := d.Spec.Template.Spec.Containers[0]
		where := m.root + ": Deployment " + name
		env := m.env(t, d.Namespace, c)

		opts := temporalOptions(t, where, env)
		for _, file := range []string{opts.TLSCAFile, opts.TLSCertFile, opts.TLSKeyFile} {
			if file != "" {
				assert.True(t, slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
					return strings.HasPrefix(file, vm.MountPath+"/")
				}), "%s: %s is on no volume mount", where, file)
			}
		}
		if name == workerName {
			checkWorkerConfig(t, m, where, d.Spec.Template.Spec, env)
		} else {
			checkControllerArgs(t, where, d.Spec.Template.Spec)
		}
	}
}

// checkControllerArgs checks the controller's flags against its pod:
// leader election on, the metrics and probe addresses on the ports the
// Service and the probes use, and a graceful stop within the grace period.
func checkControllerArgs(t *testing.T, where string, pod corev1.PodSpec) {
	c := pod.Containers[0]
	stop, err := time.ParseDuration(flagValue(c.Args, "--stop-timeout"))
	if assert.NoError(t, err, "%s: --stop-timeout", where) {
		assert.Less(t, stop, gracePeriod(pod), "%s: --stop-timeout must end before the kubelet kills the pod", where)
	}
	assert.Contains(t, c.Args, "--leader-elect", where)
	assert.NotEmpty(t, flagValue(c.Args, "--leader-election-id"), "%s: --leader-election-id names the Lease its Role grants", where)
	for flag, portName := range map[string]string{"--metrics-bind-address": "metrics", "--health-probe-bind-address": "probes"} {
		_, port, err := net.SplitHostPort(flagValue(c.Args, flag))
		if assert.NoError(t, err, "%s: %s", where, flag) {
			assert.Equal(t, portNumber(c, portName), port, "%s: %s is not the container port named %s", where, flag, portName)
		}
	}
}

func gracePeriod(pod corev1.PodSpec) time.Duration {
	return time.Duration(ptr.Deref(pod.TerminationGracePeriodSeconds, corev1.DefaultTerminationGracePeriodSeconds)) * time.Second
}

// flagValue returns the value of the flag given as name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// checkWorkerConfig loads the worker's configuration as cmd/worker does,
// from its arguments and the pod's environment.
func checkWorkerConfig(t *testing.T, m manifests, where string, pod corev1.PodSpec, env map[string]string) {
	c := pod.Containers[0]
	cfg, err := config.Load(c.Args, lookupIn(env), io.Discard)
	require.NoError(t, err, "%s: the worker rejects its configuration", where)
	assert.True(t, m.grantsSecretGet(t, cfg.ConfigNamespace, pod.ServiceAccountName),
		"%s: no RoleBinding lets ServiceAccount %s get Secrets in CONFIG_NAMESPACE %s", where, pod.ServiceAccountName, cfg.ConfigNamespace)
	assert.Less(t, cfg.StopTimeout, gracePeriod(pod), "%s: WORKER_STOP_TIMEOUT must end before the kubelet kills the pod", where)
	_, port, err := net.SplitHostPort(cfg.Metrics.Address)
	require.NoError(t, err, "%s: METRICS_ADDRESS", where)
	assert.Equal(t, port, portNumber(c, "metrics"), "%s: METRICS_ADDRESS is not the container port named metrics", where)
}

// grantsSecretGet reports whether a RoleBinding in ns lets the
// ServiceAccount sa (of the machineflow namespace) get Secrets there.
func (m manifests) grantsSecretGet(t *testing.T, ns, sa string) bool {
	for _, o := range m.ofKind("RoleBinding") {
		b := convert[rbacv1.RoleBinding](t, o)
		if b.Namespace != ns || !slices.Contains(b.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: namespace}) {
			continue
		}
		roleNamespace := ""
		if b.RoleRef.Kind == "Role" {
			roleNamespace = ns
		}
		role := m.find(b.RoleRef.Kind, roleNamespace, b.RoleRef.Name)
		if role == nil {
			continue
		}
		for _, r := range rulesOf(t, role) {
			if slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "secrets") && slices.Contains(r.Verbs, "get") {
				return true
			}
		}
	}
	return false
}

func portNumber(c corev1.Container, name string) string {
	for _, p := range c.Ports {
		if p.Name == name {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	return ""
}

// temporalOptions loads the Temporal connection settings from env the way
// every binary does (envflag binding, then Validate).
func temporalOptions(t *testing.T, where string, env map[string]string) temporalclient.Options {
	t.Helper()
	opts := temporalclient.DefaultOptions()
	b := envflag.New(flag.NewFlagSet(where, flag.ContinueOnError))
	opts.Bind(b)
	require.NoError(t, b.ApplyEnv(lookupIn(env)), "%s: Temporal settings", where)
	require.NoError(t, opts.Validate(), "%s: Temporal settings", where)
	return opts
}

// checkServices asserts every Service selects pods of a rendered
// Deployment and targets ports those pods have.
func checkServices(t *testing.T, m manifests) {
	deployments := m.deployments(t)
	for _, o := range m.ofKind("Service") {
		svc := convert[corev1.Service](t, o)
		where := m.root + ": Service " + svc.Name
		require.NotEmpty(t, svc.Spec.Selector, where)
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var matched int
		for _, d := range deployments {
			if d.Namespace != svc.Namespace || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				continue
			}
			matched++
			for _, p := range svc.Spec.Ports {
				assert.True(t, slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return hasPort(c, p.TargetPort) }),
					"%s: port %s targets %s, which Deployment %s does not have", where, p.Name, p.TargetPort.String(), d.Name)
			}
		}
		assert.Equal(t, 1, matched, "%s: selects the pods of %d Deployments, want 1", where, matched)
	}
}

// checkBindings asserts every binding points at a rendered role and at
// rendered ServiceAccounts.
func checkBindings(t *testing.T, m manifests) {
	check := func(where, ns string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		switch ref.Kind {
		case "ClusterRole":
			assert.NotNil(t, m.find("ClusterRole", "", ref.Name), "%s: ClusterRole %s is not rendered", where, ref.Name)
		case "Role":
			assert.NotNil(t, m.find("Role", ns, ref.Name), "%s: Role %s/%s is not rendered", where, ns, ref.Name)
		default:
			t.Errorf("%s: roleRef kind %q", where, ref.Kind)
		}
		require.NotEmpty(t, subjects, where)
		for _, s := range subjects {
			if assert.Equal(t, rbacv1.ServiceAccountKind, s.Kind, "%s: subjects are ServiceAccounts", where) {
				assert.NotNil(t, m.find("ServiceAccount", s.Namespace, s.Name), "%s: ServiceAccount %s/%s is not rendered", where, s.Namespace, s.Name)
			}
		}
	}
	for _, o := range m.ofKind("ClusterRoleBinding") {
		b := convert[rbacv1.ClusterRoleBinding](t, o)
		check(m.root+": ClusterRoleBinding "+b.Name, "", b.RoleRef, b.Subjects)
	}
	for _, o := range m.ofKind("RoleBinding") {
		b := convert[rbacv1.RoleBinding](t, o)
		check(m.root+": RoleBinding "+b.Namespace+"/"+b.Name, b.Namespace, b.RoleRef, b.Subjects)
	}
}

// checkRules forbids wildcards and any cluster-wide grant on Secrets: a
// ClusterRole that mentions Secrets may only be bound per namespace.
func checkRules(t *testing.T, m manifests) {
	rules := map[string][]rbacv1.PolicyRule{}
	for _, o := range slices.Concat(m.ofKind("ClusterRole"), m.ofKind("Role")) {
		rules[o.GetKind()+" "+o.GetName()] = rulesOf(t, o)
	}
	for what, rs := range rules {
		for _, r := range rs {
			for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
				assert.NotContains(t, list, rbacv1.ResourceAll, "%s: %s: wildcard in %v", m.root, what, r)
			}
		}
	}
	for _, o := range m.ofKind("ClusterRoleBinding") {
		b := convert[rbacv1.ClusterRoleBinding](t, o)
		for _, r := range rules["ClusterRole "+b.RoleRef.Name] {
			assert.NotContains(t, r.Resources, "secrets", "%s: ClusterRoleBinding %s grants Secrets cluster-wide", m.root, b.Name)
		}
	}
}

// rulesOf returns the rules of a Role or ClusterRole.
func rulesOf(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	if o.GetKind() == "Role" {
		return convert[rbacv1.Role](t, o).Rules
	}
	return convert[rbacv1.ClusterRole](t, o).Rules
}

// TestDeploymentsRunBuiltBinaries ties the manifests to the Dockerfile: the
// command of each machineflow container is a binary that the image builds
// from cmd/ and copies to /usr/local/bin.
func TestDeploymentsRunBuiltBinaries(t *testing.T) {
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	build := regexp.MustCompile(`(?m)go build .*-o /out/ ((?:\./cmd/\S+ ?)+)$`).FindSubmatch(dockerfile)
	require.NotNil(t, build, "the Dockerfile's go build line")
	require.Contains(t, string(dockerfile), "COPY --from=build /out/ /usr/local/bin/")
	var built []string
	for _, pkg := range strings.Fields(string(build[1])) {
		built = append(built, "/usr/local/bin/"+filepath.Base(pkg))
	}
	for _, r := range roots(t) {
		m := render(t, r)
		for _, name := range []string{workerName, controllerName} {
			c := m.deployment(t, name).Spec.Template.Spec.Containers[0]
			require.Len(t, c.Command, 1, "%s: Deployment %s: command", m.root, name)
			assert.Contains(t, built, c.Command[0], "%s: Deployment %s runs a binary the image does not build", m.root, name)
		}
	}
}
