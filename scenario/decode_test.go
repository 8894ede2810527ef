package scenario

import "testing"

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b  string
		limit int
		want  int
	}{
		{"", "", 2, 0},
		{"kernel", "kernel", 2, 0},
		{"kernal", "kernel", 2, 1},
		{"KERNEL", "kernel", 2, 0},
		{"expct", "expect", 2, 1},
		{"kitten", "sitting", 3, 3},
		{"kitten", "sitting", 2, 3},  // over the limit: limit+1
		{"a", "abcdefgh", 2, 3},      // lengths alone exceed the limit
		{"abcdef", "uvwxyz", 10, 6},  // all substitutions
		{"chksum", "checksum", 2, 2}, // two insertions
	}
	for _, tc := range tests {
		if got := EditDistance(tc.a, tc.b, tc.limit); got != tc.want {
			t.Errorf("EditDistance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.limit, got, tc.want)
		}
		if got := EditDistance(tc.b, tc.a, tc.limit); got != tc.want {
			t.Errorf("EditDistance(%q, %q, %d) = %d, want %d", tc.b, tc.a, tc.limit, got, tc.want)
		}
	}
}
