package activities

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// cloudInitSecret returns the cloud-init Secret of VM vm on c.
func cloudInitSecret(t *testing.T, c client.Client, ns, vm string) *corev1.Secret {
	t.Helper()
	secret := &corev1.Secret{}
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: vmplan.CloudInitSecretName(vm)}, secret))
	return secret
}

// requireNoCloudInitSecret asserts that VM vm has no cloud-init Secret on c.
func requireNoCloudInitSecret(t *testing.T, c client.Client, ns, vm, why string) {
	t.Helper()
	err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: vmplan.CloudInitSecretName(vm)}, &corev1.Secret{})
	require.True(t, apierrors.IsNotFound(err), "%s: %v", why, err)
}

// requireNoInlineCloudInit asserts that the VM, as anyone who may read VMs
// sees it, carries none of the payloads: its cloud-init volume only
// references the Secret.
func requireNoInlineCloudInit(t *testing.T, vm *kubevirtv1.VirtualMachine, payloads ...string) {
	t.Helper()
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if ci := v.CloudInitNoCloud; ci != nil {
			require.Empty(t, ci.UserData+ci.UserDataBase64+ci.NetworkData+ci.NetworkDataBase64, "inline cloud-init in volume %s", v.Name)
			require.Equal(t, vmplan.CloudInitSecretName(vm.Name), ci.UserDataSecretRef.Name)
		}
	}
	raw, err := json.Marshal(vm)
	require.NoError(t, err)
	for _, p := range payloads {
		require.NotContains(t, string(raw), p)
	}
}

func remoteVM(t *testing.T, c client.Client, ns, name string) *kubevirtv1.VirtualMachine {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, vm))
	return vm
}

// ensureVMInputs runs the activities before EnsureVirtualMachine for a
// Machine on the pod network and returns EnsureVirtualMachine's input.
func ensureVMInputs(t *testing.T, s *suite, cluster string, ref contract.MachineRef) contract.VirtualMachineInput {
	t.Helper()
	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, ref)
	s.must(t, nil, s.acts.EnsureNamespace, contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref})
	var net contract.NetworkResult
	s.must(t, &net, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: ref, Network: plan.Network})
	return contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: plan, Network: net}
}

func testCloudInitSecret(t *testing.T, s *suite, cluster string) {
	ctx := t.Context()
	sup, remote := s.env.Supervisor.Client, s.cluster(cluster)
	ns := s.namespace(t, "cloudinit")
	const oldPassword, password = "ci-old-Pa55w0rd", "ci-new-Pa55w0rd"
	const networkData = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"
	s.secrets = append(s.secrets, oldPassword, password)
	userData := func(pw string) []byte { return []byte("#cloud-config\nchpasswd:\n  list: |\n    root:" + pw + "\n") }
	s.create(t, sup, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ci-src"}, Data: map[string][]byte{"userdata": userData(password)}})
	withCloudInit := func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserDataSecretRef: &v1alpha1.CloudInitSecretRef{Name: "ci-src"}, NetworkData: networkData}
	}
	want := map[string][]byte{vmplan.CloudInitUserDataKey: userData(password), vmplan.CloudInitNetworkDataKey: []byte(networkData)}

	t.Run("an earlier attempt's Secret is brought up to date", func(t *testing.T) {
		// An attempt wrote the Secret, then lost its VM create; the
		// Machine's Secret was rotated before the retry.
		ref := s.machine(t, ns, "retried", withCloudInit)
		in := ensureVMInputs(t, s, cluster, ref)
		stale := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "retried-cloudinit",
			Labels: map[string]string{names.ManagedByLabel: names.ManagedByValue, "team": "infra"}},
			Data: map[string][]byte{vmplan.CloudInitUserDataKey: userData(oldPassword)}}
		s.create(t, remote, stale)

		var res contract.VirtualMachineResult
		s.must(t, &res, s.acts.EnsureVirtualMachine, in)
		require.True(t, res.Created)
		secret := cloudInitSecret(t, remote, ns, "retried")
		require.Equal(t, want, secret.Data)
		require.Equal(t, map[string]string{names.ManagedByLabel: names.ManagedByValue, names.SourceMachineLabel: "retried", "team": "infra"}, secret.Labels,
			"our labels restored, others kept")
		vm := remoteVM(t, remote, ns, "retried")
		ref0 := &corev1.LocalObjectReference{Name: "retried-cloudinit"}
		vols := vm.Spec.Template.Spec.Volumes
		require.Equal(t, &kubevirtv1.CloudInitNoCloudSource{UserDataSecretRef: ref0, NetworkDataSecretRef: ref0}, vols[len(vols)-1].CloudInitNoCloud)
		requireNoInlineCloudInit(t, vm, password, networkData)
		for k, v := range vm.Labels {
			require.Equal(t, v, secret.Labels[k], "the Secret carries the VM's label %s", k)
		}

		// The VM exists now: a retry adopts it and leaves the Secret be.
		s.must(t, &res, s.acts.EnsureVirtualMachine, in)
		require.False(t, res.Created)
		require.Equal(t, secret.ResourceVersion, cloudInitSecret(t, remote, ns, "retried").ResourceVersion)

		var del contract.DeleteResult
		s.must(t, &del, s.acts.DeleteVirtualMachine, contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref})
		require.Equal(t, []string{"VirtualMachine " + ns + "/retried on " + cluster, "Secret " + ns + "/retried-cloudinit on " + cluster}, del.Deleted)
		requireNoCloudInitSecret(t, remote, ns, "retried", "deleted with the VM")
		s.must(t, &del, s.acts.DeleteVirtualMachine, contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref})
		require.Empty(t, del.Deleted)
	})

	t.Run("an earlier attempt's Secret that is up to date is not written", func(t *testing.T) {
		ref := s.machine(t, ns, "same", withCloudInit)
		in := ensureVMInputs(t, s, cluster, ref)
		earlier := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "same-cloudinit", Labels: names.ManagedLabels("same")}, Data: want}
		s.create(t, remote, earlier)
		s.must(t, nil, s.acts.EnsureVirtualMachine, in)
		require.Equal(t, earlier.ResourceVersion, cloudInitSecret(t, remote, ns, "same").ResourceVersion)
		remoteVM(t, remote, ns, "same")
	})

	t.Run("a Secret of that name that is not ours is a conflict", func(t *testing.T) {
		ref := s.machine(t, ns, "taken", withCloudInit)
		in := ensureVMInputs(t, s, cluster, ref)
		foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken-cloudinit"}, Data: map[string][]byte{"token": []byte("theirs")}}
		s.create(t, remote, foreign)
		appErr := requireAppError(t, s.run(t, nil, s.acts.EnsureVirtualMachine, in), contract.ErrTypeConflict, true)
		require.Contains(t, appErr.Message(), "Secret "+ns+"/taken-cloudinit on "+cluster+" exists and is not managed by machineflow")
		err := remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "taken"}, &kubevirtv1.VirtualMachine{})
		require.True(t, apierrors.IsNotFound(err), "no VM without its cloud-init: %v", err)

		var del contract.DeleteResult
		s.must(t, &del, s.acts.DeleteVirtualMachine, contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref})
		require.Empty(t, del.Deleted)
		got := cloudInitSecret(t, remote, ns, "taken")
		require.Equal(t, foreign.Data, got.Data, "never overwritten or deleted")
		require.Empty(t, got.Labels)
	})

	t.Run("a VM the cluster refuses takes its Secret with it", func(t *testing.T) {
		// A quota of no VMs in the namespace: the API server refuses the
		// VM (Forbidden, final) after the Secret was written.
		refusing := s.namespace(t, "cloudinit-refused")
		s.create(t, sup, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: refusing, Name: "ci-src"}, Data: map[string][]byte{"userdata": userData(password)}})
		ref := s.machine(t, refusing, "refused", withCloudInit)
		in := ensureVMInputs(t, s, cluster, ref)
		noVMs := corev1.ResourceList{"count/virtualmachines.kubevirt.io": resource.MustParse("0")}
		quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: refusing, Name: "no-vms"}, Spec: corev1.ResourceQuotaSpec{Hard: noVMs}}
		s.create(t, remote, quota)
		quota.Status = corev1.ResourceQuotaStatus{Hard: noVMs, Used: noVMs}
		require.NoError(t, remote.Status().Update(ctx, quota))

		err := s.run(t, nil, s.acts.EnsureVirtualMachine, in)
		appErr := requireAppError(t, err, contract.ErrTypeUnauthorized, true)
		require.Contains(t, appErr.Message(), "create VirtualMachine "+refusing+"/refused on "+cluster)
		requireNoCloudInitSecret(t, remote, refusing, "refused", "the activity removed the Secret of the VM it could not create")
	})
}

// testCloudInitSize: payloads that fill a Secret reach the VM; beyond, the
// Machine fails for good, in LoadMachine when its own payloads are too
// large, else in EnsureVirtualMachine, with nothing created.
func testCloudInitSize(t *testing.T, s *suite, cluster string) {
	ctx := t.Context()
	sup, remote := s.env.Supervisor.Client, s.cluster(cluster)
	ns := s.namespace(t, "cloudinit-size")
	const marker = "#cloud-config\n# ci-size-marker-7d1e\n"
	s.secrets = append(s.secrets, "ci-size-marker-7d1e")
	payload := func(n int) string { return marker + strings.Repeat("x", n-len(marker)) }
	const networkData = "version: 1\nconfig: []\n"

	full := payload(vmplan.MaxCloudInitBytes - len(networkData))
	s.create(t, sup, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "full"}, Data: map[string][]byte{"userdata": []byte(full)}})
	ref := s.machine(t, ns, "full", func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserDataSecretRef: &v1alpha1.CloudInitSecretRef{Name: "full"}, NetworkData: networkData}
	})
	var res contract.VirtualMachineResult
	s.must(t, &res, s.acts.EnsureVirtualMachine, ensureVMInputs(t, s, cluster, ref))
	require.True(t, res.Created)
	secret := cloudInitSecret(t, remote, ns, "full")
	require.Equal(t, full, string(secret.Data[vmplan.CloudInitUserDataKey]))
	require.Len(t, secret.Data[vmplan.CloudInitUserDataKey], vmplan.MaxCloudInitBytes-len(networkData), "the Secret is full")
	requireNoInlineCloudInit(t, remoteVM(t, remote, ns, "full"), "ci-size-marker-7d1e")

	over := s.machine(t, ns, "over", func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: payload(vmplan.MaxCloudInitBytes + 1)}
	})
	appErr := requireAppError(t, s.run(t, nil, s.acts.LoadMachine, over), contract.ErrTypeInvalidSpec, true)
	require.Equal(t, "Machine "+ns+"/over: spec.cloudInit.userData: 1048577 bytes, more than the 1048576 a Kubernetes Secret can hold", appErr.Message())

	// Within the limit at LoadMachine, beyond it by EnsureVirtualMachine:
	// the Machine gained network data meanwhile.
	s.create(t, sup, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grown"},
		Data: map[string][]byte{"userdata": []byte(payload(vmplan.MaxCloudInitBytes))}})
	grown := s.machine(t, ns, "grown", func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserDataSecretRef: &v1alpha1.CloudInitSecretRef{Name: "grown"}}
	})
	in := ensureVMInputs(t, s, cluster, grown)
	m := &v1alpha1.Machine{}
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "grown"}, m))
	m.Spec.CloudInit.NetworkData = networkData
	require.NoError(t, sup.Update(ctx, m))
	appErr = requireAppError(t, s.run(t, nil, s.acts.EnsureVirtualMachine, in), contract.ErrTypeInvalidSpec, true)
	require.Equal(t, "Machine "+ns+"/grown: spec.cloudInit: user data (spec.cloudInit.userDataSecretRef, 1048576 bytes) and network data "+
		"(spec.cloudInit.networkData, 22 bytes) add up to more than the 1048576 bytes a Kubernetes Secret can hold", appErr.Message())
	requireNoCloudInitSecret(t, remote, ns, "grown", "nothing is written for a payload no Secret holds")
	err := remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "grown"}, &kubevirtv1.VirtualMachine{})
	require.True(t, apierrors.IsNotFound(err), "no VM: %v", err)
}
