/* Second unit: a static function with the same name as fixture.c's. */
static int __attribute__((noinline)) helper(int x) { return x - 1; }
int other_helper(int x) { return helper(x); }
