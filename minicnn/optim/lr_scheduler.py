# PLACEHOLDER: replaced by the owner of this file
class LRScheduler: pass
StepLR = MultiStepLR = CosineAnnealingLR = OneCycleLR = LRScheduler
