# Builds the bisect fixture's demo kernel for aarch64, riscv64 or s390x with
# the Debian cross compilers. The bisect tests copy this file into a scratch
# repository as its Makefile, after an "ARCH ?= <arch>" line, together with
# testdata/guests/cross.mk (the cross guests' compiler and flags, included
# below so the fixture builds exactly as they do), lib.c, lib.h, demo.c and
# <arch>/ (start.S, plat.c, arch.h, guest.ld), plus the generated config.h,
# which is forced into every C file: a commit that adds "#define REGRESSION"
# to it turns demo.elf into demo-bad. Every build starts from scratch: it
# takes a fraction of a second.
include cross.mk

CFLAGS += -include config.h

build/demo.elf: demo.c lib.c lib.h config.h cross.mk Makefile $(wildcard $(ARCH)/*)
	mkdir -p build
	$(CC) $(ASFLAGS) -c $(ARCH)/start.S -o build/start.o
	$(CC) $(CFLAGS) -c lib.c -o build/lib.o
	$(CC) $(CFLAGS) -c $(ARCH)/plat.c -o build/plat.o
	$(CC) $(CFLAGS) -c demo.c -o build/demo.o
	$(LD) $(LDFLAGS) -o $@ build/start.o build/lib.o build/plat.o build/demo.o
