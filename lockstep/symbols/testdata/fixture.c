/* Fixture for symbols tests: built with gcc by the tests (see fixture_test.go). */
int counter;                 /* .bss */
int table[16] = {1, 2, 3};   /* .data */

static int __attribute__((noinline)) helper(int x) { return x * 3 + counter; }

int __attribute__((noinline)) alpha(int x) { return helper(x) + 1; }
int __attribute__((noinline)) alpha_beta(int x) { return x + table[2]; }
int __attribute__((noinline)) checksum(const int *p, int n) {
	int s = 0;
	for (int i = 0; i < n; i++)
		s += p[i];
	return s;
}
int other_helper(int);

/* An assembly label with no size and no type, as in kernel entry code. */
__asm__(".text\n"
        ".globl asm_label\n"
        "asm_label:\n"
        "\tnop\n\tnop\n\tnop\n\tnop\n"
        "\tret\n");

void _start(void) {
	counter = alpha(2) + alpha_beta(3) + checksum(table, 16) + other_helper(1);
	for (;;)
		;
}
