"""The training engine: augmentation, precision, recipes, the training loops (stacked or looped), unrolling, and the
trainers shared by methods and protocol kinds (experts, teachers, real-data networks, DD-native, transfer)."""
