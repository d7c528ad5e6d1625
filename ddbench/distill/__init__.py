"""What a distillation method is made of: the Method base class, its registry, its artefacts (experts, teachers,
selection networks) and shared helpers (coresets, knowledge distillation)."""
