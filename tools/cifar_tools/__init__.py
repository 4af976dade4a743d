"""cifar_mpi's Python tools, one package: run any of them as
    PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.<module> --help
(the user commands tools/plot_metrics.py, cost_model.py, compare_runs.py and score_weights.py do
that for you). Every HDF5 file is opened by h5files; the modules:

    plot_metrics     plots and tables of a scaling sweep or of variants (--compare)
    compare_runs     loss curves and final numbers of runs that differ in one option
    time_to_target   the time-to-accuracy table of a scaling sweep
    step_medians     one run's median step time and its parts (tools/studies/overlap_pairs.sh)
    cost_model       alpha-beta cost model of the all-reduces and the step (a subpackage)
    scaling_model    the scaling model against SimGrid SMPI
    smpi_platform, smpi_table, smpi_vs_hosts   SimGrid platforms and tables
    score_weights    scores a weights file of either model with PyTorch (reference_cnn, reference_resnet20)
    make_lr_fixture  writes the learning-rate and SGD fixtures of the C++ tests from PyTorch
    make_simplecnn_fixture  writes the C++ tests' PyTorch fixture of two training steps
    reference_resnet20  ResNet-20 in PyTorch (names, shapes, initial weights as a weights file)
    torch_step_peer  PyTorch's training step of either model, timed (the speed comparison's peer)
    torch_recipe_peer  PyTorch trained with the program's recipe to an accuracy (the accuracy's peer)
    ctest_skips      which tests a ctest run skipped, and whether that was allowed

Debian's python3 (/usr/bin/python3) has what they import: python3-h5py, -numpy, -matplotlib, and
python3-torch for the PyTorch ones."""
