package vmplan

import (
	"testing"
)

func BenchmarkBuildVirtualMachine(b *testing.B) {
	in := baseSpecInput()
	in.CloudInit = &CloudInitData{UserData: "#cloud-config\n"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildVirtualMachine(in); err != nil {
			b.Fatal(err)
		}
	}
}
