package hwinfo

import "testing"

func TestReadMemory(t *testing.T) {
	m, err := ReadMemory()
	if err != nil {
		t.Fatal(err)
	}
	if m.TotalBytes == 0 || m.AvailableBytes > m.TotalBytes || m.UsedPercent < 0 || m.UsedPercent > 100 {
		t.Fatalf("implausible memory reading %+v", m)
	}
}
