/*
 * task.c: a fake Linux task_struct for the DWARF member lookup tests.
 * Built with gcc -g (and without -g for the no-DWARF case). pid and tgid
 * sit in an anonymous struct after an anonymous union, as randomised or
 * padded layouts put members; pid is a typedef; pcpu_hot is the 6.2+
 * per-CPU struct; __per_cpu_offset, current_task and __preempt_count are
 * the 6.1 x86_64 per-CPU symbols guest.Task reads.
 */
typedef int pid_t;

struct list_head {
	struct list_head *next, *prev;
};

struct task_struct {
	unsigned int __state;
	void *stack;
	struct list_head tasks;
	union {
		unsigned long flags;
		struct {
			int prio;
			const char *name;
		};
	};
	struct {
		long pad[3];
		pid_t pid;
		pid_t tgid;
	};
	struct {
		struct list_head children;
		char comm[16];
	} named;
	char comm[16];
};

struct pcpu_hot {
	union {
		struct {
			struct task_struct *current_task;
			int preempt_count;
			int cpu_number;
		};
		unsigned char pad[64];
	};
};

struct task_struct init_task = { .comm = "swapper" };
struct pcpu_hot pcpu_hot = { .current_task = &init_task };
unsigned long __per_cpu_offset[4];
struct task_struct *current_task = &init_task;
unsigned int __preempt_count;

void _start(void)
{
	for (;;)
		;
}
