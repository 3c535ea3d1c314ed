// Closes the stretch that clones_begin.hpp opened (no include guard on purpose).
#undef NEUROMFA_CLONES
