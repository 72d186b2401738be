/* The baseline of bench/c_size.sh: an empty program, same compiler and flags. */
int main(void) { return 0; }
