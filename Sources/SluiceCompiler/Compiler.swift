import SluiceIR
import SluiceModel
