# PLACEHOLDER: replaced by the owner of this file
class LeNet5: pass
