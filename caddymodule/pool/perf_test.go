package pool

import "testing"

func TestThreadsFor(t *testing.T) {
	for _, tc := range []struct {
		mode       string
		configured int
		want       int
	}{
		{ModeEfficiency, 8, 4}, {ModeEfficiency, 1, 1}, {ModeEfficiency, 3, 1},
		{ModeBalanced, 8, 8}, {ModePerformance, 8, 8}, {ModePerformance, 0, threadsFor(ModeBalanced, 0)},
	} {
		if got := threadsFor(tc.mode, tc.configured); got != tc.want {
			t.Errorf("threadsFor(%s, %d) = %d, want %d", tc.mode, tc.configured, got, tc.want)
		}
	}
}
