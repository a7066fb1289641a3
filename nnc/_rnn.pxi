# rnn kernels: bindings (included by _core.pyx).
