import SluiceIR
