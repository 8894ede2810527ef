/* Fixture for the source-line tests: nested always-inline functions, so
 * that outer's code holds inlined calls two deep, built with -O2 -g by
 * source_test.go. Keep the line numbers stable: tests compare with
 * addr2line, not with fixed numbers. */
#include "inline.h"

int counter;

static inline __attribute__((always_inline)) int middle(int x)
{
	int y = scale(x, counter);
	return y + 1;
}

int __attribute__((noinline)) outer(int x)
{
	int s = 0;
	for (int i = 0; i < x; i++)
		s += middle(i);
	return s * 2;
}

int __attribute__((noinline)) plain(int x)
{
	return x + counter;
}

void _start(void)
{
	counter = outer(3) + plain(4) + middle(5);
	for (;;)
		;
}
