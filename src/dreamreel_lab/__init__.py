"""The model lab (``dreamreel-lab``): the procedural world, and training and evaluating the embedded model on it."""
