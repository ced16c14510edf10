package activities

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sort"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// Operator defaults when a Machine has no MachineClass.
const (
	defaultMemory      = "2Gi"
	defaultCores       = 2
	defaultSockets     = 1
	defaultThreads     = 1
	defaultDiskSize    = "10Gi"
	defaultRootDisk    = "root"
	maxDiskSizeGB      = 65536
	maxCores           = 256
	maxSockets         = 16
	maxThreads         = 8
	minMemory          = 1 << 20
	maxVLANID          = 4094
	bootPVCLabel       = "disk-type"
	bootPVCLabelValue  = "boot"
	defaultUserDataKey = "userdata"
	defaultNetDataKey  = "networkdata"
)

// LoadMachine reads a Machine with its MachineClass and NetworkNamespace and
// validates everything the Ensure activities will need, so that an invalid
// spec fails here, before anything exists anywhere.
func (a *Activities) LoadMachine(ctx context.Context, ref contract.MachineRef) (contract.MachinePlan, error) {
	machine, err := a.getMachine(ctx, ref)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	if !names.HandlesProvider(string(machine.Spec.Provider)) {
		return contract.MachinePlan{}, newAppError(contract.ErrTypeUnsupportedProvider, true, nil,
			"Machine %s/%s: spec.provider: %q is not handled by machineflow (only \"\" or %q)",
			ref.Namespace, ref.Name, machine.Spec.Provider, names.ProviderKubevirt)
	}
	class, err := a.machineClass(ctx, ref, machine.Spec.MachineClass)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	netns, err := a.networkNamespace(ctx, machine)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	plan, err := planMachine(machine, class, netns)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	if err := a.checkCloudInitSources(ctx, machine); err != nil {
		return contract.MachinePlan{}, err
	}
	return plan, nil
}

// getMachine reads a Machine from the supervisor; a missing one is final.
func (a *Activities) getMachine(ctx context.Context, ref contract.MachineRef) (*v1alpha1.Machine, error) {
	machine := &v1alpha1.Machine{}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, machine)
	if apierrors.IsNotFound(err) {
		return nil, machineNotFound(ref)
	}
	if err != nil {
		return nil, classify(err, fmt.Sprintf("get Machine %s/%s", ref.Namespace, ref.Name))
	}
	return machine, nil
}

func (a *Activities) machineClass(ctx context.Context, ref contract.MachineRef, name string) (*v1alpha1.MachineClass, error) {
	if name == "" {
		return nil, nil
	}
	class := &v1alpha1.MachineClass{}
	err := a.supervisor.Get(ctx, client.ObjectKey{Name: name}, class)
	if apierrors.IsNotFound(err) {
		return nil, invalidSpec(ref, "spec.machineClass", "MachineClass %q not found", name)
	}
	if err != nil {
		return nil, classify(err, "get MachineClass "+name)
	}
	return class, nil
}

// networkNamespace finds the Machine's NetworkNamespace: the named one, which
// must exist, else (legacy) the one named after the Machine, else the first
// in the namespace by name, else none (pod network).
func (a *Activities) networkNamespace(ctx context.Context, machine *v1alpha1.Machine) (*v1alpha1.NetworkNamespace, error) {
	ref := refOf(machine)
	nn := &v1alpha1.NetworkNamespace{}
	if name := machine.Spec.Network.NetworkNamespaceName; name != "" {
		err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: machine.Namespace, Name: name}, nn)
		if apierrors.IsNotFound(err) {
			return nil, invalidSpec(ref, "spec.network.networkNamespaceName", "NetworkNamespace %q not found in namespace %q", name, machine.Namespace)
		}
		if err != nil {
			return nil, classify(err, fmt.Sprintf("get NetworkNamespace %s/%s", machine.Namespace, name))
		}
		return nn, nil
	}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: machine.Namespace, Name: machine.Name}, nn)
	if err == nil {
		return nn, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, classify(err, fmt.Sprintf("get NetworkNamespace %s/%s", machine.Namespace, machine.Name))
	}
	list := &v1alpha1.NetworkNamespaceList{}
	if err := a.supervisor.List(ctx, list, client.InNamespace(machine.Namespace)); err != nil {
		return nil, classify(err, "list NetworkNamespaces in "+machine.Namespace)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return &list.Items[0], nil
}

func refOf(m *v1alpha1.Machine) contract.MachineRef {
	return contract.MachineRef{Namespace: m.Namespace, Name: m.Name}
}

// planMachine validates a Machine against its (optional) MachineClass and
// NetworkNamespace and resolves the plan. It does no I/O.
func planMachine(machine *v1alpha1.Machine, class *v1alpha1.MachineClass, netns *v1alpha1.NetworkNamespace) (contract.MachinePlan, error) {
	ref := refOf(machine)
	// The API server allows names of up to 253 characters, but every
	// object made for the Machine carries its name as a label value.
	if errs := validation.IsValidLabelValue(machine.Name); len(errs) > 0 {
		return contract.MachinePlan{}, invalidSpec(ref, "metadata.name", "%s: the name is the VM's and the value of label %s on every object made for the Machine",
			errs[0], names.SourceMachineLabel)
	}
	plan := contract.MachinePlan{Machine: ref, Generation: machine.Generation, CloudInit: machine.Spec.CloudInit != nil}

	cpu, memory, err := planResources(machine, class)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	plan.CPU, plan.Memory = cpu, memory

	if plan.Disks, err = planDiskList(machine); err != nil {
		return contract.MachinePlan{}, err
	}
	if plan.Network, err = planNetwork(ref, netns); err != nil {
		return contract.MachinePlan{}, err
	}
	if plan.Boot, err = planBoot(machine); err != nil {
		return contract.MachinePlan{}, err
	}
	if err := validateCloudInit(ref, machine.Spec.CloudInit); err != nil {
		return contract.MachinePlan{}, err
	}
	return plan, nil
}

// planResources applies the operator's precedence: defaults, then an enabled
// MachineClass, then the Machine's own cpu/memory when > 0.
func planResources(machine *v1alpha1.Machine, class *v1alpha1.MachineClass) (contract.CPUPlan, string, error) {
	ref := refOf(machine)
	cpu := contract.CPUPlan{Cores: defaultCores, Sockets: defaultSockets, Threads: defaultThreads}
	memory := resource.MustParse(defaultMemory)
	if class != nil {
		if !class.Spec.Enabled {
			return contract.CPUPlan{}, "", invalidSpec(ref, "spec.machineClass", "MachineClass %q is not enabled", class.Name)
		}
		if q := class.Spec.Memory.Quantity; !q.IsZero() {
			if q.CmpInt64(minMemory) < 0 {
				return contract.CPUPlan{}, "", invalidSpec(ref, "spec.machineClass", "MachineClass %q spec.memory.quantity: %s is less than 1Mi", class.Name, q.String())
			}
			memory = q.DeepCopy()
		}
		// A class is bounded like a Machine: a value beyond would make a VM
		// that never schedules, or wrap around in the conversion below.
		c := class.Spec.CPU
		for _, o := range []struct {
			field      string
			value, max uint
		}{{"cores", c.Cores, maxCores}, {"sockets", c.Sockets, maxSockets}, {"threads", c.Threads, maxThreads}} {
			if o.value > o.max {
				return contract.CPUPlan{}, "", invalidSpec(ref, "spec.machineClass", "MachineClass %q spec.cpu.%s: %d is out of range 0..%d", class.Name, o.field, o.value, o.max)
			}
		}
		// The operator takes the class's cores as is (0 lets KubeVirt choose)
		// but sockets and threads only when set.
		cpu.Cores = uint32(c.Cores)
		if c.Sockets > 0 {
			cpu.Sockets = uint32(c.Sockets)
		}
		if c.Threads > 0 {
			cpu.Threads = uint32(c.Threads)
		}
	}
	for _, o := range []struct {
		field string
		value int
		max   int
		dst   *uint32
	}{
		{"spec.cpu.cores", machine.Spec.CPU.Cores, maxCores, &cpu.Cores},
		{"spec.cpu.sockets", machine.Spec.CPU.Sockets, maxSockets, &cpu.Sockets},
		{"spec.cpu.threadsPerCore", machine.Spec.CPU.ThreadsPerCore, maxThreads, &cpu.Threads},
	} {
		switch {
		case o.value < 0 || o.value > o.max:
			return contract.CPUPlan{}, "", invalidSpec(ref, o.field, "%d is out of range 0..%d", o.value, o.max)
		case o.value > 0:
			*o.dst = uint32(o.value)
		}
	}
	switch m := machine.Spec.Memory; {
	case m < 0:
		return contract.CPUPlan{}, "", invalidSpec(ref, "spec.memory", "%d must be >= 0", m)
	case m > 0 && m < minMemory:
		return contract.CPUPlan{}, "", invalidSpec(ref, "spec.memory", "%d bytes is less than 1Mi", m)
	case m > 0:
		// The operator truncates to whole MiB.
		memory = resource.MustParse(fmt.Sprintf("%dMi", m/minMemory))
	}
	return cpu, memory.String(), nil
}

// planDiskList applies the operator's disk naming: disk "root" (index 0) or
// "disk<i>" unless named; PVC <vm> for the boot disk, <vm>-<name> for a named
// one, <vm>-disk<i> otherwise; one 10Gi boot disk when none is given.
func planDiskList(machine *v1alpha1.Machine) ([]contract.DiskPlan, error) {
	ref := refOf(machine)
	vm := machine.Name
	if len(machine.Spec.Disks) == 0 {
		return []contract.DiskPlan{{Name: defaultRootDisk, PVCName: vm, Size: defaultDiskSize, Bus: busVirtio, BootOrder: 1}}, nil
	}
	disks := make([]contract.DiskPlan, 0, len(machine.Spec.Disks))
	diskIndex := map[string]int{}
	pvcIndex := map[string]int{}
	bootIndex := -1
	for i, d := range machine.Spec.Disks {
		field := fmt.Sprintf("spec.disks[%d]", i)
		if d.SizeGB <= 0 || d.SizeGB > maxDiskSizeGB {
			return nil, invalidSpec(ref, field+".sizeGB", "must be > 0 and <= %d, got %d", maxDiskSizeGB, d.SizeGB)
		}
		name := d.Name
		if name == "" {
			name = fmt.Sprintf("disk%d", i)
			if i == 0 {
				name = defaultRootDisk
			}
		} else if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return nil, invalidSpec(ref, field+".name", "%q is not a valid disk name: %s", name, errs[0])
		}
		if name == cloudInitDiskName || name == cdromDiskName {
			return nil, invalidSpec(ref, field+".name", "%q is reserved", name)
		}
		if j, dup := diskIndex[name]; dup {
			return nil, invalidSpec(ref, field+".name", "disk name %q is also used by spec.disks[%d]", name, j)
		}
		diskIndex[name] = i

		var pvc string
		switch {
		case d.Boot:
			if bootIndex >= 0 {
				return nil, invalidSpec(ref, field+".boot", "only one disk can boot, spec.disks[%d] already does", bootIndex)
			}
			bootIndex = i
			pvc = vm
		case d.Name != "":
			pvc = vm + "-" + d.Name
		default:
			pvc = fmt.Sprintf("%s-disk%d", vm, i)
		}
		if errs := validation.IsDNS1123Subdomain(pvc); len(errs) > 0 {
			return nil, invalidSpec(ref, field+".name", "PVC name %q is invalid: %s", pvc, errs[0])
		}
		if j, dup := pvcIndex[pvc]; dup {
			return nil, invalidSpec(ref, field+".name", "PVC name %q is also used by spec.disks[%d]", pvc, j)
		}
		pvcIndex[pvc] = i

		plan := contract.DiskPlan{Name: name, PVCName: pvc, Size: fmt.Sprintf("%dGi", d.SizeGB), Bus: diskBus(d.Type)}
		if d.Boot {
			plan.BootOrder = 1
		}
		disks = append(disks, plan)
	}
	return disks, nil
}

// diskBus maps spec.disks[].type to a bus: sata and scsi as named, every
// other type (gp3, nvme, ...) virtio.
func diskBus(diskType string) string {
	switch diskType {
	case busSATA:
		return busSATA
	case busSCSI:
		return busSCSI
	default:
		return busVirtio
	}
}

// planNetwork decides between the pod network and a bridge NAD: a VLAN id
// > 0, or static allocation (which needs a real L2 segment), selects the
// bridge.
func planNetwork(ref contract.MachineRef, netns *v1alpha1.NetworkNamespace) (contract.NetworkPlan, error) {
	if netns == nil {
		return contract.NetworkPlan{PodNetwork: true}, nil
	}
	plan := contract.NetworkPlan{NetworkNamespace: netns.Name, VLANID: netns.Status.VlanID}
	if plan.VLANID > maxVLANID {
		// The bridge CNI plugin would refuse it when the VM's pod starts,
		// leaving a VM that never boots.
		return contract.NetworkPlan{}, invalidSpec(ref, "spec.network.networkNamespaceName",
			"NetworkNamespace %q status.vlanId %d is not a VLAN id (at most %d)", netns.Name, plan.VLANID, maxVLANID)
	}
	alloc := netns.Spec.IPAllocation
	if alloc != nil && alloc.Type == v1alpha1.IPAllocationTypeStatic {
		plan.Static = true
		if s := alloc.Static; s != nil && s.IPv4CIDR != "" {
			if _, _, err := net.ParseCIDR(s.IPv4CIDR); err != nil {
				return contract.NetworkPlan{}, invalidSpec(ref, "spec.network.networkNamespaceName",
					"NetworkNamespace %q spec.ipAllocation.static.ipv4CIDR %q is not a CIDR", netns.Name, s.IPv4CIDR)
			}
		}
	}
	plan.PodNetwork = plan.VLANID <= 0 && !plan.Static
	return plan, nil
}

// planBoot decides how the VM boots and validates the image for it.
// EnsureVirtualMachine runs it again on the Machine it reads, to check that
// the image it takes from there still fits the plan.
func planBoot(machine *v1alpha1.Machine) (contract.BootPlan, error) {
	ref := refOf(machine)
	image := machine.Spec.OS.ImageID
	boot := contract.BootPlan{HasImage: image != ""}
	if machine.Annotations[names.BootSourceAnnotation] != names.BootSourceDataVolume || image == "" {
		return boot, nil
	}
	boot.ISO = true
	boot.ISOSourceType = machine.Annotations[names.BootSourceTypeAnnotation]
	if boot.ISOSourceType == "" {
		boot.ISOSourceType = isoSourceHTTP
	}
	switch boot.ISOSourceType {
	case isoSourceHTTP, isoSourceHTTPS:
		// The message goes to history and the Machine's status, so it
		// shows the URL as isoSize logs it: without a password.
		u, err := url.Parse(image)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return contract.BootPlan{}, invalidSpec(ref, "spec.os.imageID", "%q is not an http(s) URL", redactURL(image))
		}
	case isoSourceRegistry:
	default:
		return contract.BootPlan{}, invalidSpec(ref, "metadata.annotations["+names.BootSourceTypeAnnotation+"]",
			"%q is not http, https or registry", boot.ISOSourceType)
	}
	return boot, nil
}

// validateCloudInit checks what can be checked without I/O. Payloads never
// appear in messages.
func validateCloudInit(ref contract.MachineRef, ci *v1alpha1.CloudInitConfig) error {
	if ci == nil {
		return nil
	}
	if ci.Type != "" && ci.Type != v1alpha1.CloudInitTypeNoCloud {
		return invalidSpec(ref, "spec.cloudInit.type", "%q is not supported, only %q", ci.Type, v1alpha1.CloudInitTypeNoCloud)
	}
	for _, src := range cloudInitSources(ci) {
		if _, err := src.decodeInline(ref); err != nil {
			return err
		}
		if src.ref != nil && src.ref.name == "" {
			return invalidSpec(ref, src.ref.field+".name", "must not be empty")
		}
	}
	return nil
}

// cloudInitRef is the Secret or ConfigMap a cloud-init payload comes from.
type cloudInitRef struct {
	field  string // spec path, for messages
	secret bool
	name   string
	key    string
}

// cloudInitSource is where one payload (user or network data) comes from,
// by the operator's precedence: inline, base64, Secret, ConfigMap. At most
// one of its fields is used.
type cloudInitSource struct {
	kind   string // userData or networkData
	inline string
	base64 string
	ref    *cloudInitRef
}

// cloudInitSources returns the user-data and network-data sources.
func cloudInitSources(ci *v1alpha1.CloudInitConfig) [2]cloudInitSource {
	pick := func(kind, inline, b64 string, secret *v1alpha1.CloudInitSecretRef, cm *v1alpha1.CloudInitConfigMapRef, defaultKey string) cloudInitSource {
		src := cloudInitSource{kind: kind, inline: inline, base64: b64}
		switch {
		case inline != "", b64 != "":
		case secret != nil:
			src.ref = &cloudInitRef{field: "spec.cloudInit." + kind + "SecretRef", secret: true, name: secret.Name, key: keyOr(secret.Key, defaultKey)}
		case cm != nil:
			src.ref = &cloudInitRef{field: "spec.cloudInit." + kind + "ConfigMapRef", name: cm.Name, key: keyOr(cm.Key, defaultKey)}
		}
		return src
	}
	return [2]cloudInitSource{
		pick("userData", ci.UserData, ci.UserDataBase64, ci.UserDataSecretRef, ci.UserDataConfigMapRef, defaultUserDataKey),
		pick("networkData", ci.NetworkData, ci.NetworkDataBase64, ci.NetworkDataSecretRef, ci.NetworkDataConfigMapRef, defaultNetDataKey),
	}
}

func keyOr(key, def string) string {
	if key == "" {
		return def
	}
	return key
}

// checkCloudInitSources proves the referenced Secrets and ConfigMaps exist
// with their keys; a missing one is a retryable wait, as the operator
// requeued (another controller often writes them later).
func (a *Activities) checkCloudInitSources(ctx context.Context, machine *v1alpha1.Machine) error {
	if machine.Spec.CloudInit == nil {
		return nil
	}
	for _, src := range cloudInitSources(machine.Spec.CloudInit) {
		if src.ref == nil {
			continue
		}
		if _, err := a.readCloudInitRef(ctx, machine.Namespace, *src.ref); err != nil {
			return err
		}
	}
	return nil
}

// readCloudInitRef returns the referenced payload. Errors name the object
// and key, never the content.
func (a *Activities) readCloudInitRef(ctx context.Context, namespace string, r cloudInitRef) (string, error) {
	kind := "ConfigMap"
	var obj client.Object = &corev1.ConfigMap{}
	if r.secret {
		kind = "Secret"
		obj = &corev1.Secret{}
	}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: namespace, Name: r.name}, obj)
	if apierrors.IsNotFound(err) {
		return "", waiting("%s: %s %s/%s does not exist yet", r.field, kind, namespace, r.name)
	}
	if err != nil {
		return "", classify(err, fmt.Sprintf("get %s %s/%s", kind, namespace, r.name))
	}
	var value string
	var ok bool
	switch o := obj.(type) {
	case *corev1.Secret:
		var b []byte
		b, ok = o.Data[r.key]
		value = string(b)
	case *corev1.ConfigMap:
		value, ok = o.Data[r.key]
	}
	if !ok {
		return "", waiting("%s: %s %s/%s has no key %q yet", r.field, kind, namespace, r.name, r.key)
	}
	return value, nil
}
