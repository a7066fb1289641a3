// kernels/train_tmpl.h - template (see nnc_internal.h); instantiated per (dtype, ISA).
