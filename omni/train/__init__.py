"""Training: flow matching over every task, FSDP2 and Ulysses sequence parallel, exact resume."""
