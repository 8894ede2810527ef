# cross.mk: builds the aarch64, riscv64 and s390x guests with the Debian cross
# compilers (gcc-<arch>-linux-gnu) into build/<arch>/. Called by the Makefile
# as `make -f cross.mk ARCH=<arch>` only when $(ARCH)-linux-gnu-gcc exists.
# demo.c, deep.c and stores.c are shared with the x86 guests; <arch>/ holds
# the entry (start.S), the UART and exit (plat.c, arch.h), the linker script
# and the CPU probe (cpu-probe.c). See README.md.

ARCH    ?= aarch64
CROSS   := $(ARCH)-linux-gnu-
CC      := $(CROSS)gcc
LD      := $(CROSS)ld
B       := build/$(ARCH)

CFLAGS  := -std=gnu11 -O1 -g -Wall -Wextra -Werror \
	-ffreestanding -nostdlib -fno-builtin -fno-pic -fno-pie \
	-fno-stack-protector -fno-omit-frame-pointer \
	-fno-inline -fno-optimize-sibling-calls -fno-ipa-icf -fno-toplevel-reorder \
	-fno-tree-loop-distribute-patterns -fno-asynchronous-unwind-tables \
	-fno-unwind-tables -I. -I$(ARCH)
# Per architecture: no FP/SIMD (nothing enables it), aligned accesses only
# (aarch64 runs with the MMU off: memory is Device), no compressed
# instructions on riscv64 (so -cpu rv64,c=false runs the same code), the
# s390x back chain.
CFLAGS_aarch64 := -mgeneral-regs-only -mstrict-align -mno-omit-leaf-frame-pointer \
	-mbranch-protection=none
CFLAGS_riscv64 := -march=rv64ima_zicsr_zifencei -mabi=lp64 -mcmodel=medany \
	-mno-relax -msmall-data-limit=0
CFLAGS_s390x   := -march=z196 -msoft-float -mbackchain -mno-packed-stack
CFLAGS  += $(CFLAGS_$(ARCH))
ASFLAGS := -g $(filter -march=% -mabi=% -mno-relax,$(CFLAGS_$(ARCH)))
LDFLAGS := -static -nostdlib -z max-page-size=0x1000 -z noexecstack \
	--no-warn-rwx-segments --build-id=none -T $(ARCH)/guest.ld

GUESTS := demo-good demo-bad demo-exit cpu-probe deep-1e3 deep-1e5 deep-good deep-bad \
	stores-good stores-bad

SRC_demo-good   := demo.c
SRC_demo-bad    := demo.c
SRC_demo-exit   := demo.c
SRC_cpu-probe   := $(ARCH)/cpu-probe.c
SRC_deep-1e3    := deep.c
SRC_deep-1e5    := deep.c
SRC_deep-good   := deep.c
SRC_deep-bad    := deep.c
SRC_stores-good := stores.c
SRC_stores-bad  := stores.c
DEF_demo-bad    := -DREGRESSION
DEF_demo-exit   := -DEARLY_EXIT
DEF_deep-1e3    := -DWORK=1000
DEF_deep-1e5    := -DWORK=100000
DEF_deep-good   := -DWORK=1000 -DNO_CPUID
DEF_deep-bad    := -DWORK=1000 -DNO_CPUID -DPLANT_BAD
DEF_stores-bad  := -DSTORE_BAD

.PHONY: all
.SECONDARY:
all: $(GUESTS:%=$(B)/%.elf)

$(B):
	mkdir -p $@

# Outputs are written to a temporary name and renamed (see Makefile).
$(B)/start.o: $(ARCH)/start.S cross.mk | $(B)
	$(CC) $(ASFLAGS) -c $< -o $@.$$$$.tmp && mv -f $@.$$$$.tmp $@

$(B)/lib.o: lib.c lib.h $(ARCH)/arch.h cross.mk | $(B)
	$(CC) $(CFLAGS) -c $< -o $@.$$$$.tmp && mv -f $@.$$$$.tmp $@

$(B)/plat.o: $(ARCH)/plat.c lib.h $(ARCH)/arch.h cross.mk | $(B)
	$(CC) $(CFLAGS) -c $< -o $@.$$$$.tmp && mv -f $@.$$$$.tmp $@

.SECONDEXPANSION:
$(B)/%.main.o: $$(SRC_$$*) lib.h $(ARCH)/arch.h cross.mk | $(B)
	$(CC) $(CFLAGS) $(DEF_$*) -c $< -o $@.$$$$.tmp && mv -f $@.$$$$.tmp $@

$(B)/%.elf: $(B)/start.o $(B)/lib.o $(B)/plat.o $(B)/%.main.o $(ARCH)/guest.ld
	$(LD) $(LDFLAGS) -o $@.$$$$.tmp $(B)/start.o $(B)/lib.o $(B)/plat.o $(B)/$*.main.o && \
		mv -f $@.$$$$.tmp $@
