"""A bank's health: item fit, differential item functioning, linking, drift, reliability and
person fit. Pure maths over response matrices and item response functions; the command line
(:mod:`irtcat.cli.health`) and the calibration job read and write the files."""
